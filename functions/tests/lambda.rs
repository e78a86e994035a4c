//! The AWS Lambda path: `sluice` started as a Lambda bootstrap (no
//! arguments, `AWS_LAMBDA_RUNTIME_API` set) against a stand-in for the Lambda
//! Runtime API that hands it API Gateway v2 events, as AWS documents them,
//! and collects its answers.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_host::kafka::ensure_topic;
use sluice_tests::{broker, fresh_topic, guests_dir, produce_to};

const KEY: &str = "lambda-key";

/// An API Gateway HTTP API (payload 2.0) event, as a function URL sends it.
fn event(method: &str, path: &str, query: &str, key: Option<&str>) -> Value {
    let mut headers = json!({"host": "abc.lambda-url.eu-west-1.on.aws", "user-agent": "test"});
    if let Some(key) = key {
        headers["x-functions-key"] = json!(key);
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:02:00:00 +0000",
            "timeEpoch": 1_795_312_800_000u64
        },
        "isBase64Encoded": false
    })
}

#[derive(Default)]
struct RuntimeApi {
    events: VecDeque<(String, Value)>,
    answers: Vec<(String, Value)>,
    errors: Vec<String>,
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Serves one keep-alive connection of the runtime client.
fn serve(stream: TcpStream, api: Arc<Mutex<RuntimeApi>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        if request.method == "GET" && request.path.ends_with("/runtime/invocation/next") {
            // Hand out the next event; when none is left, hold the request
            // open (as Lambda does between invocations).
            let next = loop {
                if let Some(next) = api.lock().unwrap().events.pop_front() {
                    break next;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let headers = [
                ("lambda-runtime-aws-request-id".into(), next.0.clone()),
                ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn".into(),
                    "arn:aws:lambda:eu-west-1:123456789012:function:sluice".into(),
                ),
                ("lambda-runtime-trace-id".into(), "Root=1-0-0".into()),
                ("content-type".into(), "application/json".into()),
            ];
            respond(
                &mut writer,
                "200 OK",
                &headers,
                next.1.to_string().as_bytes(),
            );
        } else if let Some(rest) = request.path.strip_prefix("/2018-06-01/runtime/invocation/") {
            let id = rest.split('/').next().unwrap_or_default().to_owned();
            let mut api = api.lock().unwrap();
            if rest.ends_with("/response") {
                api.answers.push((
                    id,
                    serde_json::from_slice(&request.body).unwrap_or(Value::Null),
                ));
            } else {
                api.errors
                    .push(String::from_utf8_lossy(&request.body).into_owned());
            }
            respond(&mut writer, "202 Accepted", &[], b"{}");
        } else {
            api.lock().unwrap().errors.push(format!(
                "{} {}: {}",
                request.method,
                request.path,
                String::from_utf8_lossy(&request.body)
            ));
            respond(&mut writer, "202 Accepted", &[], b"{}");
        }
    }
}

#[test]
fn api_gateway_v2_events_reach_the_same_router() {
    let config = broker();
    let topic = fresh_topic("lambda");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(
        &config,
        &topic,
        0,
        &[r#"{"id":1}"#.to_owned(), r#"{"id":2}"#.to_owned()],
    );

    let api = Arc::new(Mutex::new(RuntimeApi::default()));
    api.lock().unwrap().events.extend([
        (
            "fetch".to_owned(),
            event(
                "GET",
                "/api/fetch",
                &format!("topic={topic}&count=5"),
                Some(KEY),
            ),
        ),
        (
            "nokey".to_owned(),
            event("GET", "/api/fetch", &format!("topic={topic}"), None),
        ),
        ("page".to_owned(), event("GET", "/", "", None)),
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    {
        let api = api.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let api = api.clone();
                std::thread::spawn(move || serve(stream, api));
            }
        });
    }
    let mut lambda = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "sluice")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("SLUICE_API_KEY", KEY)
        .env("SLUICE_KAFKA_BROKERS", &config.bootstrap_servers)
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice as a Lambda bootstrap");
    let started = Instant::now();
    while api.lock().unwrap().answers.len() < 3 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = lambda.kill();
    let output = lambda.wait_with_output().unwrap();
    let api = api.lock().unwrap();
    assert!(api.errors.is_empty(), "runtime errors: {:?}", api.errors);
    assert_eq!(
        api.answers.len(),
        3,
        "answers: {:?}; stderr: {}",
        api.answers,
        String::from_utf8_lossy(&output.stderr)
    );

    let (id, fetched) = &api.answers[0];
    assert_eq!(id, "fetch");
    assert_eq!(fetched["statusCode"], 200, "{fetched}");
    let body: Value = serde_json::from_str(fetched["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["returned"], 2);
    assert_eq!(body["records"][1]["value"], json!({"id": 2}));
    assert_eq!(
        api.answers[1].1["statusCode"], 401,
        "the key is checked on Lambda too"
    );
    assert_eq!(api.answers[2].1["statusCode"], 200);
    assert!(
        api.answers[2].1["body"]
            .as_str()
            .unwrap()
            .contains("Fetch records")
    );
}
