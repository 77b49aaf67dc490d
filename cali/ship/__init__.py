"""CALI's own shipper: tails log files and puts parsed events on Kinesis, surviving rotation and restarts.

`cali.ship.shipper.Shipper` ships; `cali.ship.settings` reads the configured sources and formats.
Nothing is imported here, so that loading the settings does not load boto3.
"""
