variable "repositories" {
  type        = map(string)
  description = "ECR repositories to create: image name (the workload, e.g. productservice) => the Service cost tag it is billed to."
}

variable "name_prefix" {
  type        = string
  description = "Optional prefix of every repository name, e.g. \"microservices-poc/\"; empty for none."
  default     = ""

  validation {
    condition     = var.name_prefix == "" || can(regex("^[a-z0-9][a-z0-9._/-]*/$", var.name_prefix))
    error_message = "name_prefix must be empty or a lower-case path ending in \"/\", e.g. \"microservices-poc/\"."
  }
}

variable "keep_tagged_images" {
  type        = number
  description = "Tagged images each repository keeps; older ones expire."
  default     = 30
}

variable "untagged_expiry_days" {
  type        = number
  description = "Days after which an untagged image (a superseded layer manifest) expires."
  default     = 7
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
