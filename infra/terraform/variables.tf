variable "name" {
  description = "Prefix of every resource name (e.g. cali for prod, cali-dev for dev). Table names become <name>-checkpoints, <name>-state, <name>-outbox."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2-21 characters, lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (dev, prod): a tag, and CALI_ALERTING__ENV in the pods."
  type        = string
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "tags" {
  description = "Extra tags applied to every resource through the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "az_count" {
  description = "Availability zones to spread subnets over (2 or 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3 (EKS needs two zones)."
  }
}

# --- network -----------------------------------------------------------------------------------
variable "vpc_cidr" {
  description = "VPC CIDR (a /16). Private subnets are the first /20s, internal-ALB subnets sit in x.x.224.0/20, public ones in x.x.240.0/20."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, one zone's failure cuts egress) instead of one per zone."
  type        = bool
  default     = true
}

# --- EKS ---------------------------------------------------------------------------------------
variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.34"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public EKS API endpoint (the CI runners and admins). Empty: private endpoint only."
  type        = list(string)
  default     = []
}

variable "system_node_instance_types" {
  description = "Instance types of the system node group (operators, Milvus, Fluent Bit's peers)."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "system_node_count" {
  description = "Min, desired and max size of the system node group."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 2, max = 3 }
}

variable "ray_node_instance_types" {
  description = "Instance types of the Ray node group (head and worker pods)."
  type        = list(string)
  default     = ["m7i.xlarge"]
}

variable "ray_node_count" {
  description = "Min, desired and max size of the Ray node group; the Ray autoscaler asks for pods, the cluster autoscaler or Karpenter adds nodes up to max."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 1, desired = 2, max = 6 }
}

# --- stream ------------------------------------------------------------------------------------
variable "kinesis_on_demand" {
  description = "Kinesis on-demand capacity mode; false uses kinesis_shard_count provisioned shards."
  type        = bool
  default     = false
}

variable "kinesis_shard_count" {
  description = "Provisioned shards (one ShardReader actor each). Ignored when kinesis_on_demand is true."
  type        = number
  default     = 2
}

variable "kinesis_retention_hours" {
  description = "Kinesis retention: how long a stopped pipeline can catch up without loss (24-8760 h)."
  type        = number
  default     = 48
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the oldest unread record is older than this (GetRecords.IteratorAgeMilliseconds)."
  type        = number
  default     = 60000
}

variable "dlq_objects_alarm" {
  description = "Alarm when more than this many DLQ objects are written in 15 minutes."
  type        = number
  default     = 5
}

# --- storage -----------------------------------------------------------------------------------
variable "archive_retention_days" {
  description = "Days raw/ archive objects are kept (moved to Glacier Instant Retrieval after 30 days)."
  type        = number
  default     = 365
}

variable "dlq_retention_days" {
  description = "Days dlq/ objects are kept."
  type        = number
  default     = 90
}

variable "log_retention_days" {
  description = "CloudWatch log group retention (Firehose errors, VPC flow logs, EKS control plane)."
  type        = number
  default     = 365
}

# --- search and cache --------------------------------------------------------------------------
variable "opensearch_instance_type" {
  description = "OpenSearch data node type."
  type        = string
  default     = "t3.medium.search"
}

variable "opensearch_instance_count" {
  description = "OpenSearch data nodes (>= 2 for zone awareness)."
  type        = number
  default     = 2
}

variable "opensearch_dedicated_master_count" {
  description = "Dedicated master nodes (0 or 3)."
  type        = number
  default     = 0

  validation {
    condition     = contains([0, 3], var.opensearch_dedicated_master_count)
    error_message = "opensearch_dedicated_master_count must be 0 or 3."
  }
}

variable "opensearch_dedicated_master_type" {
  description = "Instance type of the dedicated master nodes."
  type        = string
  default     = "m7g.large.search"
}

variable "opensearch_volume_gb" {
  description = "EBS gp3 volume per OpenSearch node, GiB."
  type        = number
  default     = 20
}

variable "opensearch_index_rotation" {
  description = "Firehose index rotation for the logs index (NoRotation, OneHour, OneDay, OneWeek, OneMonth)."
  type        = string
  default     = "OneDay"
}

variable "redis_node_type" {
  description = "ElastiCache node type for the Ray GCS fault-tolerance Redis."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_replicas" {
  description = "Redis replicas beside the primary (>= 1 enables Multi-AZ automatic failover)."
  type        = number
  default     = 1
}

# --- application -------------------------------------------------------------------------------
variable "analyze_ingress_scheme" {
  description = "ALB scheme for POST /analyze: internal (reachable from the VPC and peered networks) or internet-facing."
  type        = string
  default     = "internal"

  validation {
    condition     = contains(["internal", "internet-facing"], var.analyze_ingress_scheme)
    error_message = "analyze_ingress_scheme must be internal or internet-facing."
  }
}

variable "analyze_allowed_cidrs" {
  description = "Client CIDRs the ALB accepts for /analyze (alb.ingress.kubernetes.io/inbound-cidrs)."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate for the /analyze ALB's HTTPS listener (issued for your host name)."
  type        = string
  default     = ""
}

variable "llm_base_url" {
  description = "OpenAI-compatible LLM endpoint the analysis app calls (its key goes into the <name>/llm-api-key secret)."
  type        = string
  default     = "https://api.openai.com/v1"
}

variable "llm_model" {
  description = "LLM model name."
  type        = string
  default     = "gpt-4o-mini"
}

variable "fluent_bit_namespace" {
  description = "Namespace of the Fluent Bit DaemonSet (fluent-bit/eks-values.yaml)."
  type        = string
  default     = "logging"
}

variable "fluent_bit_service_account" {
  description = "Service account of the Fluent Bit DaemonSet."
  type        = string
  default     = "fluent-bit"
}

variable "airflow_namespace" {
  description = "Namespace of the official Airflow Helm chart on this cluster; empty: no Airflow role (MWAA or none)."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (confirm the subscription mail); empty: none."
  type        = string
  default     = ""
}

# --- CI/CD -------------------------------------------------------------------------------------
variable "github_repository" {
  description = "owner/name of the GitHub repository whose Actions deploy CALI through OIDC; empty: no CI roles."
  type        = string
  default     = ""
}

variable "github_environment" {
  description = "GitHub environment (with required reviewers) whose jobs may apply Terraform and roll out."
  type        = string
  default     = "production"
}

variable "create_github_oidc_provider" {
  description = "Create the token.actions.githubusercontent.com OIDC provider (false if the account already has one)."
  type        = bool
  default     = true
}

variable "terraform_state_bucket" {
  description = "Name of the state bucket made by bootstrap/ (the plan role reads state and writes the lock file there)."
  type        = string
  default     = ""
}
