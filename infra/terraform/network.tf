# VPC: private subnets for nodes, pods and data stores; small "intra" subnets (no internet route) that
# hold only the internal /analyze ALB; public subnets for the NAT gateway and an internet-facing ALB.
# Keeping the ALB in subnets of its own lets the NetworkPolicy admit exactly those CIDRs to Serve.
locals {
  private_subnets = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  intra_supernet  = cidrsubnet(var.vpc_cidr, 4, 14)
  public_supernet = cidrsubnet(var.vpc_cidr, 4, 15)
  intra_subnets   = [for i, az in local.azs : cidrsubnet(local.intra_supernet, 4, i)]
  public_subnets  = [for i, az in local.azs : cidrsubnet(local.public_supernet, 4, i)]
  # Where the /analyze ALB's nodes live: the only sources the NetworkPolicy lets reach Serve's port.
  ingress_source_cidr = var.analyze_ingress_scheme == "internal" ? local.intra_supernet : local.public_supernet
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = local.private_subnets
  intra_subnets   = local.intra_subnets
  public_subnets  = local.public_subnets

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway
  enable_dns_hostnames   = true
  enable_dns_support     = true

  map_public_ip_on_launch       = false
  manage_default_security_group = true # the default SG then denies everything

  # The AWS Load Balancer Controller picks subnets by these tags.
  public_subnet_tags = { "kubernetes.io/role/elb" = "1" }
  intra_subnet_tags  = { "kubernetes.io/role/internal-elb" = "1" }

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_cloudwatch_log_group_retention_in_days = var.log_retention_days
  flow_log_cloudwatch_log_group_kms_key_id        = aws_kms_key.cali.arn
  flow_log_max_aggregation_interval               = 60
}

# Gateway endpoints keep S3 and DynamoDB traffic (the archive and every checkpoint) off the NAT gateway.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}

resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}
