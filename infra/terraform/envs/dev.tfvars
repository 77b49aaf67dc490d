# A small, cheap environment: two zones, one NAT gateway, minimum node counts, single-node data stores.
name        = "cali-dev"
environment = "dev"
region      = "eu-west-1"
az_count    = 2

vpc_cidr           = "10.40.0.0/16"
single_nat_gateway = true

system_node_instance_types = ["t3.large"]
system_node_count          = { min = 1, desired = 2, max = 3 }
ray_node_instance_types    = ["m7i.large"]
ray_node_count             = { min = 1, desired = 1, max = 3 }

kinesis_on_demand   = false
kinesis_shard_count = 1

opensearch_instance_type  = "t3.small.search"
opensearch_instance_count = 1
opensearch_volume_gb      = 10

redis_node_type = "cache.t4g.micro"
redis_replicas  = 0

archive_retention_days = 30
dlq_retention_days     = 30
log_retention_days     = 30

analyze_ingress_scheme = "internal"
analyze_allowed_cidrs  = ["10.40.0.0/16"]
