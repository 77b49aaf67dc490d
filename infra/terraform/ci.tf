# GitHub Actions reach AWS through OIDC: no long-lived keys. Three roles, each trusted only from its
# place in the workflows (.github/workflows/deploy.yml):
#   gha-plan    pull requests and main: read-only, to run `terraform plan` (and write the state lock).
#   gha-build   main only: push the image to ECR.
#   gha-deploy  jobs in the protected GitHub environment: `terraform apply` and the RayService rollout.
locals {
  github      = var.github_repository != ""
  github_host = "token.actions.githubusercontent.com"
  github_oidc_arn = !local.github ? "" : (var.create_github_oidc_provider ?
    aws_iam_openid_connect_provider.github[0].arn :
  "arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.github_host}")
  github_roles = !local.github ? {} : {
    gha-plan   = ["repo:${var.github_repository}:pull_request", "repo:${var.github_repository}:ref:refs/heads/main"]
    gha-build  = ["repo:${var.github_repository}:ref:refs/heads/main"]
    gha-deploy = ["repo:${var.github_repository}:environment:${var.github_environment}"]
  }
  ci_access_entries = !local.github ? {} : {
    gha-deploy = {
      principal_arn = aws_iam_role.github["gha-deploy"].arn
      policy_associations = {
        cali = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"
          access_scope = { type = "namespace", namespaces = ["cali"] }
        }
      }
    }
  }
}

resource "aws_iam_openid_connect_provider" "github" {
  count          = local.github && var.create_github_oidc_provider ? 1 : 0
  url            = "https://${local.github_host}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "github_trust" {
  for_each = local.github_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_host}:sub"
      values   = each.value
    }
  }
}

resource "aws_iam_role" "github" {
  for_each             = local.github_roles
  name                 = "${var.name}-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "github_plan_read_only" {
  count      = local.github ? 1 : 0
  role       = aws_iam_role.github["gha-plan"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "github_plan_state" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.terraform_state_bucket}"]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${var.terraform_state_bucket}/cali/*"]
  }
}

resource "aws_iam_role_policy" "github_plan_state" {
  count  = local.github && var.terraform_state_bucket != "" ? 1 : 0
  name   = "terraform-state"
  role   = aws_iam_role.github["gha-plan"].id
  policy = data.aws_iam_policy_document.github_plan_state.json
}

data "aws_iam_policy_document" "github_build" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # an account-wide call
  }
  statement {
    actions = ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages"]
    resources = [aws_ecr_repository.cali.arn]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.cali.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ecr.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "github_build" {
  count  = local.github ? 1 : 0
  name   = "ecr-push"
  role   = aws_iam_role.github["gha-build"].id
  policy = data.aws_iam_policy_document.github_build.json
}

# Applying this module creates IAM roles, EKS and KMS keys: only an administrator can. The role is
# reachable only from jobs of the protected environment, after a required reviewer approved them.
resource "aws_iam_role_policy_attachment" "github_deploy_admin" {
  count      = local.github ? 1 : 0
  role       = aws_iam_role.github["gha-deploy"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AdministratorAccess"
}

data "aws_iam_policy_document" "github_deploy_eks" {
  statement {
    actions   = ["eks:DescribeCluster"]
    resources = [module.eks.cluster_arn]
  }
}

resource "aws_iam_role_policy" "github_deploy_eks" {
  count  = local.github ? 1 : 0
  name   = "eks-describe"
  role   = aws_iam_role.github["gha-deploy"].id
  policy = data.aws_iam_policy_document.github_deploy_eks.json
}
