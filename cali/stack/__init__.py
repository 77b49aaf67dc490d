"""Local AWS-compatible stack: kinesalite for Kinesis, one-thread moto for S3, DynamoDB, Secrets, Firehose."""

from cali.stack.aws import boto_client
from cali.stack.config import StackConfig, default_state_dir
from cali.stack.lifecycle import StackError, down, status, up

__all__ = ["StackConfig", "StackError", "boto_client", "default_state_dir", "down", "status", "up"]
