"""The demo stack: everything a demo window needs and nothing that must outlive it (seed 004 P0, P12).

Confluent Cloud (environment, Basic cluster, topics, service accounts, API keys into SSM), a VPC
with public subnets only (no NAT, no load balancer), ECS Fargate (one task definition per runtime
entrypoint, services for the pack daemons), RDS PostgreSQL, log groups, Cloud Map for IG. It
learns about core only through core's remote state, so `terraform destroy` here cannot reach core.
"""

from stacks.demo.stack import DemoStack

__all__ = ["DemoStack"]
