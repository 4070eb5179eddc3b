"""The Terraform stacks (core, demo, local_parity) synthesised with CDK Terrain from the registry.

cdktn runs its JavaScript core on the installed Node 20. The two variables below silence the
jsii runtime's Node-version banners, which would otherwise land on the output of every
`fp stacks` command; they must be set before `cdktn` is first imported, and every stack module
is inside this package, so setting them here covers all of them.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
