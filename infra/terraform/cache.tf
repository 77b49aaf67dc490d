# ElastiCache Redis for Ray GCS fault tolerance (RayService gcsFaultToleranceOptions): the head pod can
# restart without losing the cluster's actors and Serve applications. Cluster mode off (Ray needs a
# single keyspace), TLS in transit (the RayService uses rediss://), AUTH token kept in Secrets Manager.
resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "Ray GCS Redis: 6379 from EKS nodes only"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_nodes" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from EKS nodes"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = module.eks.node_security_group_id
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${var.name}-redis"
  subnet_ids = module.vpc.private_subnets
}

resource "random_password" "redis_auth" {
  length  = 48
  special = false # ElastiCache AUTH tokens allow only some symbols; letters and digits are always accepted
}

resource "aws_elasticache_replication_group" "ray_gcs" {
  replication_group_id       = "${var.name}-ray-gcs"
  description                = "Ray GCS fault tolerance for the CALI RayService"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 1 + var.redis_replicas
  automatic_failover_enabled = var.redis_replicas > 0
  multi_az_enabled           = var.redis_replicas > 0
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.cali.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth.result
  snapshot_retention_limit   = 3
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
