# EKS with two managed node groups: "system" for operators, Milvus and controllers, "ray" for the
# RayService and RayJob pods (tainted, so only Ray pods land there). The Ray autoscaler adds Ray pods;
# the Cluster Autoscaler (Helm chart, role below) adds nodes to the "ray" group for pods that do not fit.
module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.19.0"

  name               = var.name
  kubernetes_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  endpoint_private_access      = true
  endpoint_public_access       = length(var.cluster_endpoint_public_access_cidrs) > 0
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  enabled_log_types                      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days
  cloudwatch_log_group_kms_key_id        = aws_kms_key.cali.arn

  create_kms_key    = false
  encryption_config = { provider_key_arn = aws_kms_key.cali.arn, resources = ["secrets"] }

  # The identity that creates the cluster administers it; CI gets a namespace-scoped entry below.
  enable_cluster_creator_admin_permissions = true
  access_entries                           = local.ci_access_entries

  addons = {
    coredns                = {}
    kube-proxy             = {}
    eks-pod-identity-agent = { before_compute = true }
    vpc-cni = {
      before_compute = true
      # The VPC CNI enforces Kubernetes NetworkPolicy (k8s/kuberay/networkpolicy.yaml) only when asked.
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    aws-ebs-csi-driver = {
      pod_identity_association = [{
        role_arn        = module.ebs_csi_pod_identity.iam_role_arn
        service_account = "ebs-csi-controller-sa"
      }]
    }
  }

  eks_managed_node_groups = {
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.system_node_instance_types
      min_size       = var.system_node_count.min
      desired_size   = var.system_node_count.desired
      max_size       = var.system_node_count.max
      labels         = { "cali.io/pool" = "system" }
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1 # pods use Pod Identity, never the node's instance role
      }
    }
    ray = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.ray_node_instance_types
      min_size       = var.ray_node_count.min
      desired_size   = var.ray_node_count.desired
      max_size       = var.ray_node_count.max
      labels         = { "cali.io/pool" = "ray" }
      taints = {
        ray = { key = "cali.io/ray", value = "true", effect = "NO_SCHEDULE" }
      }
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
      tags = {
        "k8s.io/cluster-autoscaler/enabled"     = "true"
        "k8s.io/cluster-autoscaler/${var.name}" = "owned"
      }
    }
  }
}

# Controllers that the Kubernetes side installs with Helm (docs/deploy.md): each gets its own role.
module "ebs_csi_pod_identity" {
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                      = "${var.name}-ebs-csi"
  attach_aws_ebs_csi_policy = true
  aws_ebs_csi_kms_arns      = [aws_kms_key.cali.arn]
}

module "lb_controller_pod_identity" {
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                            = "${var.name}-aws-lbc"
  attach_aws_lb_controller_policy = true

  associations = {
    this = {
      cluster_name    = module.eks.cluster_name
      namespace       = "kube-system"
      service_account = "aws-load-balancer-controller"
    }
  }
}

module "cluster_autoscaler_pod_identity" {
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                             = "${var.name}-cluster-autoscaler"
  attach_cluster_autoscaler_policy = true
  cluster_autoscaler_cluster_names = [module.eks.cluster_name]

  associations = {
    this = {
      cluster_name    = module.eks.cluster_name
      namespace       = "kube-system"
      service_account = "cluster-autoscaler"
    }
  }
}
