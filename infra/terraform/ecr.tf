# The one CALI image (Dockerfile): Ray head, workers and jobs. Tags are immutable (CI tags by commit).
resource "aws_ecr_repository" "cali" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.cali.arn
  }
}

resource "aws_ecr_lifecycle_policy" "cali" {
  repository = aws_ecr_repository.cali.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 50 images (enough to roll back weeks of deploys)"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}
