"""The local_parity stack: the same buckets, streams and SSM parameters on local endpoints.

For operators who run MinIO / LocalStack instead of the embedded substrate: the AWS provider's
endpoints point at the registry's loopback host and port. The embedded substrate still
bootstraps itself from the registry without Terraform; this stack is the Terraform twin.
"""

from stacks.local_parity.stack import LocalParityStack

__all__ = ["LocalParityStack"]
