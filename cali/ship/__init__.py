"""CALI's own shipper: tails log files and puts parsed events on Kinesis, surviving rotation and restarts."""

from cali.ship.shipper import Shipper

__all__ = ["Shipper"]
