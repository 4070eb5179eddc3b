"""The core stack: what persists between demo windows (seed 004 P0, P12).

Buckets (oracle, archive, quarantine, evidence), the Terraform state bucket and lock table, the
monthly budget with its alerts, the ECR repository, and the IAM roles of appendix C. Its outputs
are the only way the demo stack learns about it (remote state), so destroying demo never
touches anything here.
"""

from stacks.core.stack import CoreStack

__all__ = ["CoreStack"]
