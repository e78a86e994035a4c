# URLs and names only: no output carries a secret.

output "function_url" {
  description = "The function URL: the fetch page at /, the API under /api/."
  value       = aws_lambda_function_url.main.function_url
}

output "function_name" {
  value = aws_lambda_function.main.function_name
}

output "log_group" {
  value = aws_cloudwatch_log_group.main.name
}
