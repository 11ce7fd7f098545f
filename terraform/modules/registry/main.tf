# One ECR repository per service image: tags are immutable (a deployed tag always means the same
# image), every push is scanned, images are encrypted with KMS, and a
# lifecycle policy bounds what is kept.

resource "aws_ecr_repository" "service" {
  for_each = var.repositories

  name                 = "${var.name_prefix}${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    # The account's aws/ecr key: pushers and nodes need no extra key grants.
    encryption_type = "KMS"
  }

  tags = merge(var.tags, { Service = each.value })
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each = aws_ecr_repository.service

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after ${var.untagged_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the ${var.keep_tagged_images} most recent tagged images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.keep_tagged_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
