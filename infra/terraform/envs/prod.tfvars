# Production: three zones, a NAT gateway per zone, Multi-AZ Redis, zone-aware OpenSearch.
name        = "cali"
environment = "prod"
region      = "eu-west-1"
az_count    = 3

vpc_cidr           = "10.41.0.0/16"
single_nat_gateway = false

system_node_instance_types = ["m7i.large"]
system_node_count          = { min = 2, desired = 3, max = 4 }
ray_node_instance_types    = ["m7i.xlarge"]
ray_node_count             = { min = 2, desired = 2, max = 8 }

kinesis_on_demand   = false
kinesis_shard_count = 4

opensearch_instance_type  = "m7g.large.search"
opensearch_instance_count = 3
opensearch_volume_gb      = 100

opensearch_dedicated_master_count = 3
opensearch_dedicated_master_type  = "m7g.large.search"

redis_node_type = "cache.t4g.small"
redis_replicas  = 1

archive_retention_days = 365
dlq_retention_days     = 90
log_retention_days     = 365

analyze_ingress_scheme = "internal"
analyze_allowed_cidrs  = ["10.41.0.0/16"]

github_environment = "production"
