# Sluice's HTTP API on AWS Lambda: the same binary as `bootstrap` on the
# provided.al2023 runtime, answering function URL events through
# lambda_http (the fetch page, /api/fetch, the admin API). Kafka and the
# registry stay where they are (Event Hubs and the data lake on Azure, or any
# Kafka the function can reach). The timer export and the Kafka-triggered
# enrichment are Azure Functions triggers and do not run here.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  log_group = "/aws/lambda/${var.name}"
}

# --- One key for the function's environment (it holds the secrets) and logs --

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account root statement is the default that keeps the key manageable through IAM.
  #checkov:skip=CKV_AWS_111:As CKV_AWS_109: Resource "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_356:As CKV_AWS_109: Resource "*" in a key policy means this key only.
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsTheLogGroup"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account}:log-group:${local.log_group}"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name}: the Lambda function's environment (its secrets) and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

resource "aws_cloudwatch_log_group" "main" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# --- The execution role: write its own logs and traces, decrypt its settings --

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "main" {
  name               = "${var.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "permissions" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.main.arn}:*"]
  }

  statement {
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    # X-Ray has no resource-level permissions for these two actions.
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "main" {
  name   = "${var.name}-lambda"
  role   = aws_iam_role.main.id
  policy = data.aws_iam_policy_document.permissions.json
}

# --- The function and its URL -------------------------------------------------

resource "aws_lambda_function" "main" {
  #checkov:skip=CKV_AWS_116:Function URL requests are synchronous: a failure is the caller's HTTP error, there is no asynchronous event to dead-letter.
  #checkov:skip=CKV_AWS_117:The function reaches Kafka and the registry over the internet (Event Hubs, Azure storage); a VPC would add a NAT gateway and nothing to protect inside it.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and a signing job between `sluice package` and the upload; the package's SHA-256 is pinned by source_code_hash instead.
  function_name                  = var.name
  description                    = "Sluice HTTP API (fetch page, /api/fetch, admin API)"
  role                           = aws_iam_role.main.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.package
  source_code_hash               = filebase64sha256(var.package)
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  environment {
    variables = { for name, value in local.sluice_settings : name => value if value != null }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.main.name
  }

  depends_on = [aws_iam_role_policy.main]
}

resource "aws_lambda_function_url" "main" {
  #checkov:skip=CKV_AWS_258:The URL serves a browser page and an API for callers without AWS credentials; Sluice checks SLUICE_API_KEY, SLUICE_ADMIN_KEY or an OAuth2 token on every /api route itself.
  function_name      = aws_lambda_function.main.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# With authorization NONE the function's policy must still let the public
# call it through the URL (and, for URLs made since October 2025, invoke it).
resource "aws_lambda_permission" "url" {
  #checkov:skip=CKV_AWS_301:Public by design, limited to calls through the function URL (auth type NONE); Sluice authenticates every /api request itself.
  statement_id           = "PublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.main.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "url_invoke" {
  #checkov:skip=CKV_AWS_301:Public only through the function URL (invoked_via_function_url), as CKV_AWS_301 above.
  statement_id             = "PublicFunctionUrlInvoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.main.function_name
  principal                = "*"
  invoked_via_function_url = true
}
