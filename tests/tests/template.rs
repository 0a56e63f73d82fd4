//! The SAM template's security properties, asserted on the real `infra/template.yaml` so that a
//! later edit cannot silently widen them: no `Action: "*"`, `Resource: "*"` only for the named
//! APIs without resource-level permissions, `iam:PassRole` only for the Bedrock service role and
//! only to Bedrock, the service role's trust conditions, an encrypted, private, TLS-only bucket, an
//! encrypted topic, and functions that match the workspace's binaries and are configured as
//! reviewed (memory, timeout, arm64, JSON logs, active tracing, a dead-letter destination).
//!
//! The template is read with CloudFormation's short-form tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`,
//! ...) turned into their long form (`{"Ref": ..}`, `{"Fn::Sub": ..}`, ...), as CloudFormation
//! itself does, so the assertions below see exactly what CloudFormation will.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

// ------------------------------------------------------------------------------------------
// Reading the template
// ------------------------------------------------------------------------------------------

/// A YAML node with CloudFormation's short-form intrinsic tags converted to their long form.
struct Cfn(Value);

/// The node itself, tag not yet applied; its children are `Cfn` nodes again.
struct Plain(Value);

impl<'de> Deserialize<'de> for Cfn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let serde_saphyr::Tagged(Plain(value), tag) = Deserialize::deserialize(deserializer)?;
        match tag {
            None => Ok(Cfn(value)),
            Some(tag) => long_form(&tag, value).map(Cfn).map_err(de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for Plain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlainVisitor)
    }
}

struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Plain;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Plain, E> {
        Ok(Plain(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Plain, E> {
        Ok(Plain(Value::Null))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Plain, E> {
        Ok(Plain(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Plain, E> {
        Ok(Plain(json!(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Plain, E> {
        Ok(Plain(json!(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Plain, E> {
        Ok(Plain(json!(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Plain, E> {
        Ok(Plain(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Plain, E> {
        Ok(Plain(Value::String(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Plain, A::Error> {
        let mut items = Vec::new();
        while let Some(Cfn(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Plain(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plain, A::Error> {
        let mut out = Map::new();
        while let Some((key, Cfn(value))) = map.next_entry::<String, Cfn>()? {
            if out.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(Plain(Value::Object(out)))
    }
}

/// `!Ref x` → `{"Ref": x}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` →
/// `{"Fn::Sub": s}`, ...; any other tag is an error, so a typo cannot pass as a string.
fn long_form(tag: &str, value: Value) -> Result<Value, String> {
    let name = tag.strip_prefix('!').unwrap_or(tag);
    let long = match name {
        "Ref" => "Ref".to_owned(),
        "Condition" => "Condition".to_owned(),
        "GetAtt" => {
            let args = match value {
                Value::String(s) => {
                    let (resource, attribute) = s.split_once('.').ok_or_else(|| {
                        format!("!GetAtt {s:?} is not of the form Resource.Attribute")
                    })?;
                    json!([resource, attribute])
                }
                other => other,
            };
            return Ok(json!({ "Fn::GetAtt": args }));
        }
        "Sub" | "If" | "Not" | "Equals" | "And" | "Or" | "Join" | "Split" | "Select"
        | "FindInMap" | "Base64" | "Cidr" | "ImportValue" | "GetAZs" | "Transform"
        | "ToJsonString" | "Length" => format!("Fn::{name}"),
        // YAML core tags (`!!str`, ...) carry no CloudFormation meaning.
        _ if tag.starts_with("tag:yaml.org,2002:") => return Ok(value),
        _ => {
            return Err(format!(
                "unknown tag {tag:?}: not a CloudFormation intrinsic"
            ));
        }
    };
    Ok(json!({ long: value }))
}

fn parse(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Cfn>(text)
        .map(|Cfn(v)| v)
        .map_err(|e| e.to_string())
}

fn template_path() -> PathBuf {
    evalgate_tests::repo_root().join("infra/template.yaml")
}

fn template_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = template_path();
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the SAM template {}: {e}", path.display()))
    })
}

/// The whole template, long form. Panics with the file and the parser's message (line and
/// column) when it cannot be read: every test here then fails, clearly.
fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        parse(template_text()).unwrap_or_else(|e| {
            panic!(
                "{} is not a readable CloudFormation template: {e}",
                template_path().display()
            )
        })
    })
}

fn resources() -> &'static Map<String, Value> {
    template()["Resources"]
        .as_object()
        .expect("the template has a Resources map")
}

fn resource(name: &str) -> &'static Value {
    resources()
        .get(name)
        .unwrap_or_else(|| panic!("the template has no resource {name}"))
}

fn resources_of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(n, r)| (n.as_str(), r))
        .collect()
}

// ------------------------------------------------------------------------------------------
// IAM helpers
// ------------------------------------------------------------------------------------------

/// One statement of a policy document, with where it lives.
struct Statement<'a> {
    resource: &'a str,
    statement: &'a Value,
}

impl Statement<'_> {
    fn sid(&self) -> &str {
        self.statement["Sid"].as_str().unwrap_or("")
    }
    fn is_allow(&self) -> bool {
        self.statement["Effect"] == "Allow"
    }
    fn actions(&self) -> Vec<String> {
        strings(&self.statement["Action"])
    }
    /// The Resource entries; an intrinsic (`!Sub`, `!Ref`, ...) stays one entry.
    fn resources(&self) -> Vec<&Value> {
        match &self.statement["Resource"] {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        }
    }
    fn grants_everything_on(&self) -> bool {
        self.resources().iter().any(|r| r.as_str() == Some("*"))
    }
    fn describe(&self) -> String {
        format!("{} statement {:?}", self.resource, self.sid())
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("a list of strings").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// Every statement of every policy document in the template (role trust and permission
/// policies, bucket, topic and queue policies). A `!If` in a statement list contributes both
/// branches: a condition must not be able to switch a wider grant on.
fn statements() -> Vec<Statement<'static>> {
    fn collect<'a>(resource: &'a str, value: &'a Value, out: &mut Vec<Statement<'a>>) {
        match value {
            Value::Object(map) => {
                if let Some(list) = map.get("Statement") {
                    for item in as_list(list) {
                        expand(resource, item, out);
                    }
                }
                for (key, child) in map {
                    if key != "Statement" {
                        collect(resource, child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect(resource, i, out)),
            _ => {}
        }
    }
    fn expand<'a>(resource: &'a str, item: &'a Value, out: &mut Vec<Statement<'a>>) {
        if let Some(args) = item.get("Fn::If").and_then(Value::as_array) {
            for branch in &args[1..] {
                if branch.get("Ref") != Some(&json!("AWS::NoValue")) {
                    expand(resource, branch, out);
                }
            }
        } else {
            out.push(Statement {
                resource,
                statement: item,
            });
        }
    }
    fn as_list(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        }
    }
    let mut out = Vec::new();
    for (name, r) in resources() {
        collect(name, r, &mut out);
    }
    assert!(
        out.len() > 20,
        "found only {} policy statements: is the walk broken?",
        out.len()
    );
    out
}

fn role_statements(role: &str) -> Vec<Statement<'static>> {
    statements()
        .into_iter()
        .filter(|s| s.resource == role)
        .collect()
}

/// Every permission (Allow) action a role grants, across all its inline policies.
fn granted_actions(role: &str) -> BTreeSet<String> {
    role_statements(role)
        .into_iter()
        .filter(|s| s.is_allow() && s.statement.get("Principal").is_none())
        .flat_map(|s| s.actions())
        .collect()
}

/// The computed bucket name every reference to the bucket uses (see the template's note).
const BUCKET_NAME: &str = "${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}";

fn bucket_arn(suffix: &str) -> Value {
    json!({ "Fn::Sub": format!("arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}{suffix}") })
}

// ------------------------------------------------------------------------------------------
// The reader itself
// ------------------------------------------------------------------------------------------

#[test]
fn reader_converts_short_form_tags_and_rejects_unknown_ones() {
    let got = parse(
        "a: !Ref X\n\
         b: !GetAtt Role.Arn\n\
         c: !Sub \"arn:${AWS::Partition}:s3:::x\"\n\
         d: !If [Cond, !Ref A, !Ref AWS::NoValue]\n\
         e: !Not [!Equals [!Ref P, \"\"]]\n\
         f: !Join [\",\", [a, !Select [0, !Split [\"-\", !Ref S]]]]\n\
         g: { n: 1, t: true, s: \"false\" }\n",
    )
    .unwrap();
    assert_eq!(
        got,
        json!({
            "a": {"Ref": "X"},
            "b": {"Fn::GetAtt": ["Role", "Arn"]},
            "c": {"Fn::Sub": "arn:${AWS::Partition}:s3:::x"},
            "d": {"Fn::If": ["Cond", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]},
            "e": {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]},
            "f": {"Fn::Join": [",", ["a", {"Fn::Select": [0, {"Fn::Split": ["-", {"Ref": "S"}]}]}]]},
            "g": {"n": 1, "t": true, "s": "false"}
        })
    );
    let err = parse("a: !Reff X\n").unwrap_err();
    assert!(err.contains("unknown tag \"!Reff\""), "{err}");
    let err = parse("a: !GetAtt NoDot\n").unwrap_err();
    assert!(err.contains("Resource.Attribute"), "{err}");
    let err = parse("a: 1\na: 2\n").unwrap_err();
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn template_is_a_sam_template() {
    let t = template();
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
    assert!(
        t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "parameter groups make `sam deploy --guided` readable"
    );
    // Every parameter is in a group, so --guided and the console show all of them.
    let grouped: BTreeSet<String> =
        t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| strings(&g["Parameters"]))
            .collect();
    let declared: BTreeSet<String> = t["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(grouped, declared);
}

// ------------------------------------------------------------------------------------------
// IAM
// ------------------------------------------------------------------------------------------

#[test]
fn no_statement_allows_every_action_or_a_whole_service() {
    for s in statements() {
        assert!(
            s.statement.get("NotAction").is_none() && s.statement.get("NotResource").is_none(),
            "{}: NotAction/NotResource invert a grant; list what is allowed instead",
            s.describe()
        );
        if !s.is_allow() {
            continue;
        }
        for action in s.actions() {
            assert!(
                action != "*" && !action.ends_with(":*"),
                "{} allows {action:?}",
                s.describe()
            );
        }
    }
}

/// The only actions that may be granted on `Resource: "*"`, and why.
const NO_RESOURCE_LEVEL_PERMISSIONS: &[(&str, &str)] = &[
    (
        "xray:PutTraceSegments",
        "X-Ray has no resource-level permissions",
    ),
    (
        "xray:PutTelemetryRecords",
        "X-Ray has no resource-level permissions",
    ),
];

#[test]
fn resource_star_only_for_apis_without_resource_level_permissions() {
    let allowed: BTreeMap<&str, &str> = NO_RESOURCE_LEVEL_PERMISSIONS.iter().copied().collect();
    let mut exceptions = 0;
    for s in statements().into_iter().filter(Statement::is_allow) {
        if !s.grants_everything_on() {
            continue;
        }
        exceptions += 1;
        assert!(
            s.sid().starts_with("NoResourceLevel"),
            "{} grants Resource \"*\": name it NoResourceLevel… and say why in a comment",
            s.describe()
        );
        assert_eq!(
            s.resources().len(),
            1,
            "{}: \"*\" must stand alone",
            s.describe()
        );
        for action in s.actions() {
            assert!(
                allowed.contains_key(action.as_str()),
                "{} grants {action} on \"*\", but {action} has resource-level permissions \
                 (or is not a reviewed exception in NO_RESOURCE_LEVEL_PERMISSIONS)",
                s.describe()
            );
        }
    }
    assert_eq!(exceptions, 4, "one X-Ray statement per function role");
    // Each exception carries a comment naming the API, right above it.
    let lines: Vec<&str> = template_text().lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("Sid: NoResourceLevel") {
            let above = lines[i.saturating_sub(3)..i].join("\n");
            assert!(
                above.contains("# Resource \"*\":") && above.contains("no"),
                "line {}: a Resource \"*\" statement needs a comment naming the API without resource-level permissions",
                i + 1
            );
        }
    }
}

#[test]
fn pass_role_only_for_the_bedrock_service_role_and_only_to_bedrock() {
    let passes: Vec<_> = statements()
        .into_iter()
        .filter(|s| {
            s.actions()
                .iter()
                .any(|a| a.eq_ignore_ascii_case("iam:PassRole"))
        })
        .collect();
    assert_eq!(passes.len(), 1, "exactly one PassRole grant");
    let s = &passes[0];
    assert_eq!(s.resource, "SubmitEvaluationRole");
    assert_eq!(s.actions(), ["iam:PassRole"], "PassRole stands alone");
    assert_eq!(
        s.statement["Resource"],
        json!({"Fn::GetAtt": ["BedrockEvaluationRole", "Arn"]})
    );
    assert_eq!(
        s.statement["Condition"],
        json!({"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}})
    );
}

#[test]
fn bedrock_service_role_trusts_only_this_accounts_evaluation_jobs() {
    let role = &resource("BedrockEvaluationRole")["Properties"];
    let trust = role["AssumeRolePolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(trust.len(), 1);
    let t = &trust[0];
    assert_eq!(t["Effect"], "Allow");
    assert_eq!(t["Principal"], json!({"Service": "bedrock.amazonaws.com"}));
    assert_eq!(t["Action"], "sts:AssumeRole");
    assert_eq!(
        t["Condition"],
        json!({
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": {"Fn::Sub":
                "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:evaluation-job/*"}}
        })
    );
}

#[test]
fn bedrock_service_role_reads_shards_writes_results_and_invokes_only_the_judges() {
    let shards = bucket_arn("/shards/*");
    let results = bucket_arn("/evaluations/*");
    for s in role_statements("BedrockEvaluationRole")
        .into_iter()
        .filter(Statement::is_allow)
    {
        if s.statement.get("Principal").is_some() {
            continue; // the trust statement
        }
        for action in s.actions() {
            let resources = s.resources();
            match action.as_str() {
                "s3:GetObject" => assert!(
                    resources.iter().all(|r| **r == shards || **r == results),
                    "{}: reads outside shards/ and evaluations/",
                    s.describe()
                ),
                "s3:PutObject" | "s3:AbortMultipartUpload" => {
                    assert_eq!(resources, [&results], "{}", s.describe())
                }
                "s3:ListBucket" | "s3:GetBucketLocation" | "s3:ListBucketMultipartUploads" => {
                    assert_eq!(resources, [&bucket_arn("")], "{}", s.describe())
                }
                "bedrock:InvokeModel"
                | "bedrock:CreateModelInvocationJob"
                | "bedrock:StopModelInvocationJob" => assert_eq!(
                    s.statement["Resource"],
                    json!({"Ref": "EvaluatorModelArns"}),
                    "{}: only the judge models given as a parameter",
                    s.describe()
                ),
                "kms:Decrypt" | "kms:GenerateDataKey" | "kms:DescribeKey" => assert_kms_scope(&s),
                other => panic!("{}: unexpected action {other}", s.describe()),
            }
        }
    }
}

/// A KMS grant is for one of the keys given as parameters: the bucket's or the topic's key
/// through that service only, or the keys policies may encrypt evaluation jobs with.
fn assert_kms_scope(s: &Statement<'_>) {
    match s.sid() {
        "EncryptJobsWithListedKeys" => assert_eq!(
            s.statement["Resource"],
            json!({"Ref": "EvaluationJobKmsKeyArns"}),
            "{}",
            s.describe()
        ),
        "UseAlertTopicKeyThroughSns" => assert_via_service(s, "sns"),
        _ => assert_via_service(s, "s3"),
    }
}

fn assert_via_service(s: &Statement<'_>, service: &str) {
    assert_eq!(
        s.statement["Condition"]["StringEquals"]["kms:ViaService"],
        json!({"Fn::Sub": format!("{service}.${{AWS::Region}}.amazonaws.com")}),
        "{}: a key is usable through {service} only",
        s.describe()
    );
    let key = if service == "s3" {
        "BucketKmsKeyArn"
    } else {
        "AlertTopicKmsKeyArn"
    };
    assert_eq!(
        s.statement["Resource"],
        json!({"Ref": key}),
        "{}",
        s.describe()
    );
}

/// What each function role may do. Widening a role means changing this list, in review.
const REVIEWED_ACTIONS: &[(&str, &[&str])] = &[
    (
        "SubmitEvaluationRole",
        &[
            "bedrock:CreateEvaluationJob",
            "bedrock:StopEvaluationJob",
            "bedrock:TagResource",
            "events:PutEvents",
            "iam:PassRole",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKey",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
            "sqs:SendMessage",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ],
    ),
    (
        "CheckGatesRole",
        &[
            "bedrock:GetEvaluationJob",
            "events:PutEvents",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "lambda:GetAlias",
            "lambda:GetFunctionConfiguration",
            "lambda:ListVersionsByFunction",
            "lambda:UpdateAlias",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "sqs:SendMessage",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ],
    ),
    (
        "EvaluateRollbackRole",
        &[
            "events:PutEvents",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "lambda:GetAlias",
            "lambda:GetFunctionConfiguration",
            "lambda:ListVersionsByFunction",
            "lambda:UpdateAlias",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "sqs:SendMessage",
            "ssm:GetParameter",
            "ssm:LabelParameterVersion",
            "ssm:PutParameter",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ],
    ),
    (
        "SendAlertRole",
        &[
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKey*",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "sns:Publish",
            "sqs:SendMessage",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ],
    ),
];

#[test]
fn function_roles_grant_exactly_the_reviewed_actions() {
    for (role, expected) in REVIEWED_ACTIONS {
        let expected: BTreeSet<String> = expected.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(granted_actions(role), expected, "{role}");
    }
}

#[test]
fn function_roles_are_scoped_to_their_own_resources() {
    let scoped_by: BTreeMap<&str, fn(&str) -> Vec<Value>> = BTreeMap::from([
        (
            "logs:",
            (|role: &str| {
                let group = role.replace("Role", "LogGroup");
                vec![json!({"Fn::GetAtt": [group, "Arn"]})]
            }) as fn(&str) -> Vec<Value>,
        ),
        ("sqs:", |role| {
            let queue = role.replace("Role", "DeadLetterQueue");
            vec![json!({"Fn::GetAtt": [queue, "Arn"]})]
        }),
        ("events:", |_| {
            vec![json!({"Fn::GetAtt": ["EventBus", "Arn"]})]
        }),
        ("sns:", |_| vec![json!({"Ref": "AlertTopic"})]),
        ("ssm:", |_| {
            vec![json!({"Fn::Sub":
                "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ReleaseParameterPath}*"})]
        }),
        ("lambda:", |_| {
            vec![json!({"Fn::Sub":
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${ReleaseFunctionPrefix}*"})]
        }),
    ]);
    let job = json!({"Fn::Sub":
        "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:evaluation-job/*"});
    for (role, _) in REVIEWED_ACTIONS {
        for s in role_statements(role)
            .into_iter()
            .filter(Statement::is_allow)
        {
            if s.statement.get("Principal").is_some() {
                continue;
            }
            let resources: Vec<Value> = s.resources().into_iter().cloned().collect();
            for action in s.actions() {
                let service = &action[..=action.find(':').unwrap()];
                if let Some(expected) = scoped_by.get(service) {
                    assert_eq!(resources, expected(role), "{} ({action})", s.describe());
                } else if service == "s3:" {
                    for r in &resources {
                        let arn = r["Fn::Sub"].as_str().unwrap_or_default();
                        let prefix = format!("arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}");
                        assert!(
                            arn.starts_with(&prefix),
                            "{}: {action} outside the evaluation bucket: {r}",
                            s.describe()
                        );
                        let key = &arn[prefix.len()..];
                        if action == "s3:ListBucket" {
                            // On the bucket itself: S3 then answers 404, not 403, for a key
                            // that does not exist, which reading an optional record needs.
                            assert_eq!(key, "", "{}", s.describe());
                        } else {
                            assert!(
                                key.starts_with('/') && key.ends_with("/*") && key.len() > 3,
                                "{}: {action} on {key:?}: object access is by prefix",
                                s.describe()
                            );
                        }
                    }
                } else if service == "bedrock:" {
                    assert!(
                        resources == [job.clone()]
                            || (action == "bedrock:CreateEvaluationJob"
                                && s.statement["Resource"] == json!({"Ref": "EvaluatorModelArns"})),
                        "{} ({action}): {resources:?}",
                        s.describe()
                    );
                } else if service == "kms:" {
                    assert_kms_scope(&s);
                } else if service == "iam:" || service == "xray:" {
                    // Asserted by their own tests.
                } else {
                    panic!("{}: no scoping rule for {action}", s.describe());
                }
            }
        }
    }
}

/// Which bucket prefixes each role may touch, per action. Widening means changing this table.
const REVIEWED_PREFIXES: &[(&str, &str, &[&str])] = &[
    (
        "SubmitEvaluationRole",
        "s3:GetObject",
        &[
            "datasets/",
            "policies/",
            "ledger/jobs/",
            "ledger/deferred/",
            "ledger/outbox/",
        ],
    ),
    (
        "SubmitEvaluationRole",
        "s3:GetObjectVersion",
        &["datasets/"],
    ),
    (
        "SubmitEvaluationRole",
        "s3:PutObject",
        &[
            "shards/",
            "metadata/",
            "rejections/",
            "ledger/jobs/",
            "ledger/deferred/",
            "ledger/open/",
            "ledger/rejections/",
            "ledger/outbox/",
        ],
    ),
    (
        "SubmitEvaluationRole",
        "s3:DeleteObject",
        &["ledger/deferred/", "ledger/outbox/", "ledger/jobs/"],
    ),
    (
        "CheckGatesRole",
        "s3:GetObject",
        &[
            "policies/",
            "evaluations/",
            "metadata/",
            "verdicts/",
            "ledger/open/",
            "ledger/jobs/",
            "ledger/deferred/",
            "ledger/promotions/",
        ],
    ),
    (
        "CheckGatesRole",
        "s3:PutObject",
        &["verdicts/", "ledger/promotions/"],
    ),
    ("CheckGatesRole", "s3:DeleteObject", &["ledger/open/"]),
    (
        "EvaluateRollbackRole",
        "s3:GetObject",
        &[
            "policies/",
            "verdicts/",
            "ledger/promotions/",
            "ledger/rollbacks/",
        ],
    ),
    (
        "EvaluateRollbackRole",
        "s3:PutObject",
        &["ledger/rollbacks/"],
    ),
    (
        "SendAlertRole",
        "s3:GetObject",
        &[
            "policies/",
            "ledger/alerts/",
            "ledger/alert-claims/",
            "ledger/alert-facts/",
        ],
    ),
    (
        "SendAlertRole",
        "s3:PutObject",
        &[
            "ledger/alerts/",
            "ledger/alert-claims/",
            "ledger/alert-facts/",
        ],
    ),
    (
        "BedrockEvaluationRole",
        "s3:GetObject",
        &["shards/", "evaluations/"],
    ),
    ("BedrockEvaluationRole", "s3:PutObject", &["evaluations/"]),
    (
        "BedrockEvaluationRole",
        "s3:AbortMultipartUpload",
        &["evaluations/"],
    ),
];

#[test]
fn roles_touch_only_the_reviewed_bucket_prefixes() {
    let prefix = format!("arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}/");
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (name, _) in resources_of_type("AWS::IAM::Role") {
        for s in role_statements(name)
            .into_iter()
            .filter(Statement::is_allow)
        {
            for action in s.actions().into_iter().filter(|a| a.starts_with("s3:")) {
                for r in s.resources() {
                    let arn = r["Fn::Sub"].as_str().unwrap_or_default();
                    if let Some(key) = arn.strip_prefix(&prefix) {
                        let key = key.strip_suffix('*').unwrap_or_else(|| {
                            panic!("{}: object grant {arn} is not a prefix", s.describe())
                        });
                        granted
                            .entry((name.to_owned(), action.clone()))
                            .or_default()
                            .insert(key.to_owned());
                    }
                }
            }
        }
    }
    let expected: BTreeMap<(String, String), BTreeSet<String>> = REVIEWED_PREFIXES
        .iter()
        .map(|(role, action, prefixes)| {
            (
                ((*role).to_owned(), (*action).to_owned()),
                prefixes.iter().map(|p| (*p).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(granted, expected);
    // Every reviewed prefix holds a key the code builds (from evalgate's layout and ledger
    // functions) and uses with that action: no prefix outlives the code that needed it.
    let needs = code_needs();
    for (role, action, prefixes) in REVIEWED_PREFIXES {
        for p in *prefixes {
            let used = needs.iter().any(|n| {
                n.role == *role
                    && n.actions.contains(action)
                    && n.resource
                        .strip_prefix(&format!("{}/", object_arn("")))
                        .is_some_and(|key| key.starts_with(p))
            });
            assert!(
                used,
                "{role} {action} on {p}: no key the code uses is under it"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// What the code calls, against what the template grants
// ------------------------------------------------------------------------------------------
//
// `code_needs()` lists every AWS call the shipped code makes, per role, with the resource it
// names in an example deployment; S3 keys come from evalgate's own layout and ledger
// functions, so a moved prefix shows up here. Two checks run over it, with the template's
// policies rendered for that deployment (parameters substituted, wildcards matched as IAM
// does; statement conditions are asserted by the tests above, not here):
//
// * every call is granted (a deploy would otherwise fail at run time with AccessDenied);
// * every grant is used by some call (least privilege: nothing left over from older code).
//
// When the code starts or stops calling something, change `code_needs()` with it; these
// tests then say exactly which statement to add or remove.

/// The example deployment: every optional grant switched on (a bucket key, a topic key, a job
/// key, Lambda aliases as release pointers), every other parameter at its default.
const EXAMPLE_PARAMETERS: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::StackName", "evalgate"),
    ("ReleaseFunctionPrefix", "support-bot"),
    ("BucketKmsKeyArn", BUCKET_KEY),
    ("AlertTopicKmsKeyArn", TOPIC_KEY),
    ("EvaluationJobKmsKeyArns", JOB_KEY),
];
const BUCKET_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1111aaaa-bucket";
const TOPIC_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/2222bbbb-topic";
const JOB_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/3333cccc-jobs";

/// A parameter's (or pseudo parameter's) value in the example deployment.
fn example_value(name: &str) -> Option<String> {
    if let Some((_, v)) = EXAMPLE_PARAMETERS.iter().find(|(n, _)| *n == name) {
        return Some((*v).to_owned());
    }
    let parameter = template()["Parameters"].get(name)?;
    Some(match &parameter["Default"] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("parameter {name} has no default: give it an example value"),
        other => other.to_string(),
    })
}

/// `${Name}` in a `!Sub` string, as in the example deployment; the stack's own resources
/// become `<Name>` / `<Name.Attribute>`.
fn substitute(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${...}") + start;
        let name = &rest[start + 2..end];
        match example_value(name) {
            Some(value) => out.push_str(&value),
            None => {
                let base = name.split('.').next().unwrap_or(name);
                assert!(
                    resources().contains_key(base),
                    "${{{name}}} is neither a parameter nor a resource"
                );
                out.push_str(&format!("<{name}>"));
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A statement's Resource entry in the example deployment (a list parameter gives one entry
/// per item).
fn render(value: &Value) -> Vec<String> {
    if let Some(s) = value.as_str() {
        return vec![s.to_owned()];
    }
    if let Some(name) = value.get("Ref").and_then(Value::as_str) {
        return match example_value(name) {
            Some(v) if template()["Parameters"][name]["Type"] == "CommaDelimitedList" => v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            Some(v) => vec![v],
            None => {
                assert!(resources().contains_key(name), "!Ref {name}: no such thing");
                vec![format!("<{name}>")]
            }
        };
    }
    if let Some(args) = value.get("Fn::GetAtt").and_then(Value::as_array) {
        let part = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
        return vec![format!("<{}.{}>", part(0), part(1))];
    }
    if let Some(text) = value.get("Fn::Sub").and_then(Value::as_str) {
        return vec![substitute(text)];
    }
    panic!("cannot render the policy resource {value}")
}

/// IAM's wildcard match: `*` is any run of characters (`/` and `:` included), `?` any one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star, start)) = backtrack {
            pi = star + 1;
            ti = start + 1;
            backtrack = Some((star, start + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Action names are case-insensitive in IAM.
fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

#[test]
fn wildcards_match_like_iam() {
    assert!(wildcard_match(
        "arn:aws:s3:::b/ledger/jobs/*",
        "arn:aws:s3:::b/ledger/jobs/a/v1/j.json"
    ));
    assert!(!wildcard_match(
        "arn:aws:s3:::b/ledger/jobs/*",
        "arn:aws:s3:::b/ledger/open/a/v1.json"
    ));
    assert!(!wildcard_match(
        "arn:aws:s3:::b/ledger/jobs/*",
        "arn:aws:s3:::b"
    ));
    assert!(wildcard_match(
        "arn:aws:bedrock:*::foundation-model/m",
        "arn:aws:bedrock:us-east-1::foundation-model/m"
    ));
    assert!(wildcard_match(
        "arn:aws:lambda:r:1:function:bot*",
        "arn:aws:lambda:r:1:function:bot-api:7"
    ));
    assert!(wildcard_match("a?c", "abc") && !wildcard_match("a?c", "ac"));
    assert!(
        wildcard_match("*", "*")
            && wildcard_match("*a*b", "xxaxxb")
            && !wildcard_match("*a*b", "xxbxa")
    );
    assert!(action_matches(
        "kms:GenerateDataKey*",
        "kms:GenerateDataKey"
    ));
    assert!(action_matches("S3:getobject", "s3:GetObject"));
    assert!(!action_matches("s3:GetObject", "s3:GetObjectVersion"));
    let arn = json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ReleaseParameterPath}*"});
    assert_eq!(
        render(&arn),
        ["arn:aws:ssm:us-east-1:123456789012:parameter/evalgate/*"]
    );
    assert_eq!(
        render(&json!({"Fn::GetAtt": ["EventBus", "Arn"]})),
        ["<EventBus.Arn>"]
    );
    assert_eq!(render(&json!({"Ref": "AlertTopic"})), ["<AlertTopic>"]);
    assert_eq!(
        render(&json!({"Ref": "EvaluationJobKmsKeyArns"})),
        [JOB_KEY]
    );
}

/// One call (or several with the same resource) a role makes, and where in the code.
struct Need {
    role: &'static str,
    actions: &'static [&'static str],
    resource: String,
    why: &'static str,
}

const FUNCTION_ROLES: [&str; 4] = [
    "SubmitEvaluationRole",
    "CheckGatesRole",
    "EvaluateRollbackRole",
    "SendAlertRole",
];

/// The evaluation bucket's ARN (`key` empty) or an object's, in the example deployment.
fn object_arn(key: &str) -> String {
    let bucket = substitute(&format!("arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}"));
    if key.is_empty() {
        bucket
    } else {
        format!("{bucket}/{key}")
    }
}

/// Every AWS call the shipped code makes, per role (the audit, as data). S3 keys are built by
/// the same functions the code builds them with.
fn code_needs() -> Vec<Need> {
    use evalgate::alert::dedup::{claim_key, fact_key};
    use evalgate::layout::{self, DatasetKey};
    use evalgate::ledger;

    let (app, rel) = ("support-bot", "v42");
    let upload = format!("{}{app}/{rel}/smoke.jsonl", layout::DATASETS_PREFIX);
    let dataset = DatasetKey::parse(&upload).expect("a dataset key");
    let bucket = object_arn("");
    let dataset_id = layout::dataset_id("smoke", "3858f62230ac3c915f300c664312c63f");
    let job = layout::job_name(app, rel, &["evalgate-bucket", &upload, "etag"], 0);
    let result = format!(
        "{}{job}/abcdefghijkl/models/{app}-{rel}/taskTypes/General/datasets/smoke/5f1d_output.jsonl",
        layout::output_prefix(app, rel, &dataset_id)
    );
    let outbox = format!("{}submitted-x.json", evalgate::submission::OUTBOX_PREFIX);
    let o = |key: String| object_arn(&key);
    let job_arn = "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdefghijkl".to_owned();
    let judge = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0".to_owned();
    let parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/evalgate/support-bot/release";
    let function = "arn:aws:lambda:us-east-1:123456789012:function:support-bot-api";

    let mut needs = Vec::new();
    let mut need = |role: &'static str,
                    actions: &'static [&'static str],
                    resource: String,
                    why: &'static str| {
        needs.push(Need {
            role,
            actions,
            resource,
            why,
        })
    };

    for role in FUNCTION_ROLES {
        let own = |kind: &str| format!("<{}.Arn>", role.replace("Role", kind));
        need(
            role,
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            own("LogGroup"),
            "Lambda writes the function's JSON logs to its own log group",
        );
        need(
            role,
            &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "*".into(),
            "Tracing: Active",
        );
        need(
            role,
            &["sqs:SendMessage"],
            own("DeadLetterQueue"),
            "Lambda sends a failed asynchronous event to the on-failure destination",
        );
        need(
            role,
            &["kms:Decrypt", "kms:GenerateDataKey"],
            BUCKET_KEY.into(),
            "GetObject and PutObject on an SSE-KMS bucket (through S3)",
        );
        need(
            role,
            &["s3:ListBucket"],
            bucket.clone(),
            "store::list (ListObjectsV2); and a read of a missing record answers 404, not 403",
        );
    }

    // submit-evaluation: evalgate::submission, bedrock::BedrockEvaluationJobs.
    let r = "SubmitEvaluationRole";
    need(
        r,
        &["s3:GetObject"],
        o(upload.clone()),
        "resolve_key (HeadObject), open_pinned: validate, then shard the upload",
    );
    need(
        r,
        &["s3:GetObjectVersion"],
        o(upload.clone()),
        "open_pinned: GetObject with the notification's versionId",
    );
    need(
        r,
        &["s3:GetObject"],
        o(layout::policy_key(app)),
        "load_policy",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        o(ledger::job_key(app, rel, &job)),
        "Ledger::job/jobs, record_job (conditional), remove_job (abort_upload)",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        o(ledger::deferred_key(app, rel, &job)),
        "deferred_record, Ledger::deferred, defer (conditional), remove_deferred",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        o(outbox),
        "publish_or_park parks an event, flush_outbox publishes and deletes it",
    );
    need(
        r,
        &["s3:PutObject"],
        o(layout::shard_key(app, rel, &dataset_id, 0)),
        "write_shards",
    );
    need(
        r,
        &["s3:PutObject"],
        o(layout::metadata_key(app, rel, &dataset_id, 0)),
        "write_shards: the metadata sidecar",
    );
    need(
        r,
        &["s3:PutObject"],
        o(layout::rejection_key(Some(&dataset), &upload)),
        "reject: the rejection report",
    );
    need(
        r,
        &["s3:PutObject"],
        o(layout::rejection_key(None, "notes.txt")),
        "reject_key: a key outside the convention",
    );
    need(
        r,
        &["s3:PutObject"],
        o(ledger::rejection_record_key(Some((app, rel)), "u1")),
        "Ledger::record_rejection (conditional)",
    );
    need(
        r,
        &["s3:PutObject"],
        o(ledger::rejection_record_key(None, "u1")),
        "Ledger::record_rejection of a key outside the convention",
    );
    need(
        r,
        &["s3:PutObject"],
        o(ledger::open_key(app, rel)),
        "Ledger::open_release (conditional)",
    );
    need(
        r,
        &[
            "bedrock:CreateEvaluationJob",
            "bedrock:TagResource",
            "bedrock:StopEvaluationJob",
        ],
        job_arn.clone(),
        "create_job (with jobTags), stop_job (abort_upload)",
    );
    need(
        r,
        &["bedrock:CreateEvaluationJob"],
        judge.clone(),
        "create_job is also authorised against the judge model it names",
    );
    need(
        r,
        &["iam:PassRole"],
        "<BedrockEvaluationRole.Arn>".into(),
        "create_job passes the service role (roleArn)",
    );
    need(
        r,
        &["events:PutEvents"],
        "<EventBus.Arn>".into(),
        "Evaluation Submitted / Deferred, Dataset Rejected",
    );
    need(
        r,
        &["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        JOB_KEY.into(),
        "create_job with the policy's evaluation.kms_key_id",
    );

    // check-gates: evalgate::gating, promotion, release.
    let r = "CheckGatesRole";
    need(
        r,
        &["s3:GetObject", "s3:DeleteObject"],
        o(ledger::open_key(app, rel)),
        "Ledger::open_releases, close_release",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(layout::verdict_key(app, rel)),
        "gate_release (HeadObject), already_decided, baseline, Ledger::verdicts; record (conditional)",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(layout::scores_key(app, rel)),
        "baseline reads a release's scores.jsonl; record writes it (conditional)",
    );
    need(
        r,
        &["s3:PutObject"],
        o(layout::report_key(app, rel)),
        "write_report (conditional)",
    );
    need(
        r,
        &["s3:GetObject"],
        o(ledger::deferred_key(app, rel, &job)),
        "Ledger::deferred: shards still waiting",
    );
    need(
        r,
        &["s3:GetObject"],
        o(ledger::job_key(app, rel, &job)),
        "Ledger::jobs",
    );
    need(
        r,
        &["s3:GetObject"],
        o(result.clone()),
        "decide streams each job's *_output.jsonl",
    );
    need(
        r,
        &["s3:GetObject"],
        o(layout::metadata_key(app, rel, &dataset_id, 0)),
        "read_usage: cost and latency from the sidecars",
    );
    need(
        r,
        &["s3:GetObject"],
        o(layout::policy_key(app)),
        "read_policy",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(ledger::promotion_key(app, rel)),
        "promotion::promote: Ledger::promotion, record_promotion (conditional)",
    );
    need(
        r,
        &["bedrock:GetEvaluationJob"],
        job_arn.clone(),
        "gate_release: each counted job's status",
    );
    need(
        r,
        &["events:PutEvents"],
        "<EventBus.Arn>".into(),
        "Gate Verdict, Release Promoted",
    );
    need(
        r,
        &["ssm:GetParameter", "ssm:PutParameter"],
        parameter.into(),
        "SsmParameterPointer read/set; a promotion sets no label",
    );
    need(
        r,
        &[
            "lambda:GetAlias",
            "lambda:UpdateAlias",
            "lambda:ListVersionsByFunction",
        ],
        function.into(),
        "LambdaAliasPointer read, set (version_of_release), UpdateAlias with RevisionId",
    );
    need(
        r,
        &["lambda:GetFunctionConfiguration"],
        format!("{function}:7"),
        "LambdaAliasPointer::release_of_version (Qualifier)",
    );

    // evaluate-rollback: evalgate::rollback, release.
    let r = "EvaluateRollbackRole";
    need(
        r,
        &["s3:GetObject"],
        o(layout::policy_key(app)),
        "PolicyIndex::route reads the policies that changed",
    );
    need(
        r,
        &["s3:GetObject"],
        o(layout::verdict_key(app, rel)),
        "Ledger::verdicts",
    );
    need(
        r,
        &["s3:GetObject"],
        o(ledger::promotion_key(app, rel)),
        "Ledger::promotions",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(ledger::rollback_key(app, "6a7e8feb-b491")),
        "Ledger::rollback(s), record_rollback (conditional), update_rollback",
    );
    need(
        r,
        &["events:PutEvents"],
        "<EventBus.Arn>".into(),
        "Rollback Executed / Skipped",
    );
    need(
        r,
        &[
            "ssm:GetParameter",
            "ssm:PutParameter",
            "ssm:LabelParameterVersion",
        ],
        parameter.into(),
        "SsmParameterPointer read/set; a rollback labels its version",
    );
    need(
        r,
        &[
            "lambda:GetAlias",
            "lambda:UpdateAlias",
            "lambda:ListVersionsByFunction",
        ],
        function.into(),
        "LambdaAliasPointer read, set",
    );
    need(
        r,
        &["lambda:GetFunctionConfiguration"],
        format!("{function}:7"),
        "LambdaAliasPointer::release_of_version (Qualifier)",
    );

    // send-alert: evalgate::alert::{deliver, dedup}, notify.
    let r = "SendAlertRole";
    need(
        r,
        &["s3:GetObject"],
        o(layout::policy_key(app)),
        "deliver: the application's alert settings",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(ledger::alert_key("e-1")),
        "Dedup::sent, record_sent (conditional)",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(claim_key("e-1", 1)),
        "Dedup::claim (conditional), release",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject"],
        o(fact_key("0123abcd")),
        "Dedup::fact_sent, record_fact",
    );
    need(
        r,
        &["sns:Publish"],
        "<AlertTopic>".into(),
        "SnsNotifier::publish",
    );
    need(
        r,
        &["kms:Decrypt", "kms:GenerateDataKey"],
        TOPIC_KEY.into(),
        "Publish to a topic encrypted with a customer key (through SNS)",
    );

    // The service role Bedrock assumes for the jobs (reference/bedrock-evaluation.md, IAM).
    let r = "BedrockEvaluationRole";
    need(
        r,
        &["s3:GetObject"],
        o(layout::shard_key(app, rel, &dataset_id, 0)),
        "the job's dataset (inputDataConfig)",
    );
    need(
        r,
        &["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        o(result),
        "results and Bedrock's permission check under the output prefix",
    );
    need(
        r,
        &[
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:ListBucketMultipartUploads",
        ],
        bucket,
        "bucket-level calls AWS documents for evaluation jobs",
    );
    need(
        r,
        &[
            "bedrock:InvokeModel",
            "bedrock:CreateModelInvocationJob",
            "bedrock:StopModelInvocationJob",
        ],
        judge,
        "the judge model (AWS documents all three for judge jobs)",
    );
    need(
        r,
        &["kms:Decrypt", "kms:GenerateDataKey"],
        BUCKET_KEY.into(),
        "shards and results on an SSE-KMS bucket",
    );
    need(
        r,
        &["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        JOB_KEY.into(),
        "the job's temporary data, encrypted with the policy's key",
    );
    needs
}

/// The Allow statements of `role`'s permission policies (not its trust policy).
fn permission_statements(role: &str) -> Vec<Statement<'static>> {
    role_statements(role)
        .into_iter()
        .filter(|s| s.is_allow() && s.statement.get("Principal").is_none())
        .collect()
}

#[test]
fn every_call_the_code_makes_is_granted() {
    let mut missing = Vec::new();
    for need in code_needs() {
        for action in need.actions {
            let granted = permission_statements(need.role).iter().any(|s| {
                s.actions().iter().any(|a| action_matches(a, action))
                    && s.resources()
                        .into_iter()
                        .flat_map(render)
                        .any(|pattern| wildcard_match(&pattern, &need.resource))
            });
            if !granted {
                missing.push(format!(
                    "{} needs {action} on {} ({})",
                    need.role, need.resource, need.why
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the deployed functions would fail with AccessDenied:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_grant_is_used_by_the_code() {
    let needs = code_needs();
    let roles: BTreeSet<&str> = resources_of_type("AWS::IAM::Role")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let covered: BTreeSet<&str> = needs.iter().map(|n| n.role).collect();
    assert_eq!(
        roles, covered,
        "every role's calls are listed in code_needs()"
    );
    let mut unused = Vec::new();
    for role in roles {
        for s in permission_statements(role) {
            for action in s.actions() {
                for pattern in s.resources().into_iter().flat_map(render) {
                    let used = needs.iter().any(|n| {
                        n.role == role
                            && n.actions.iter().any(|a| action_matches(&action, a))
                            && wildcard_match(&pattern, &n.resource)
                    });
                    if !used {
                        unused.push(format!("{}: {action} on {pattern}", s.describe()));
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted, but no code calls it (remove it, or list the call in code_needs()):\n{}",
        unused.join("\n")
    );
}

#[test]
fn dashboard_body_is_json_and_shows_the_metrics_check_gates_publishes() {
    let body = resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("the dashboard body is one !Sub string");
    // Substitute every ${...} with a plain word, then it must be JSON.
    let mut plain = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        plain.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${...}") + start;
        let name = &rest[start + 2..end];
        assert!(
            name.starts_with("AWS::")
                || template()["Parameters"].get(name).is_some()
                || resources().contains_key(name.split('.').next().unwrap_or(name)),
            "the dashboard names ${{{name}}}, which is neither a parameter nor a resource"
        );
        plain.push('X');
        rest = &rest[end + 1..];
    }
    plain.push_str(rest);
    let dashboard: Value = serde_json::from_str(&plain)
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON once substituted: {e}"));
    let text = dashboard.to_string();
    for metric in ["Mean", "PassRate", "UnscoredFraction"] {
        assert!(
            body.contains(&format!(
                "{{\\\"${{MetricsNamespace}}\\\",Application,Metric}} MetricName=\\\"{metric}\\\""
            )),
            "no widget for {metric} by Application and Metric"
        );
    }
    assert!(body.contains("Application,Outcome} MetricName=\\\"Verdicts\\\""));
    assert!(text.contains("rolled back"), "rollbacks per application");
    let widgets = dashboard["widgets"].as_array().unwrap();
    assert!(
        widgets.iter().any(|w| w["type"] == "alarm"),
        "an alarm status widget"
    );
}

// ------------------------------------------------------------------------------------------
// Bucket and topic
// ------------------------------------------------------------------------------------------

#[test]
fn evaluation_bucket_is_encrypted_private_versioned_and_retained() {
    let bucket = resource("EvaluationBucket");
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    assert_eq!(bucket["UpdateReplacePolicy"], "Retain");
    let p = &bucket["Properties"];
    assert_eq!(p["BucketName"], json!({"Fn::Sub": BUCKET_NAME}));
    let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
    assert_eq!(
        sse["SSEAlgorithm"],
        json!({"Fn::If": ["UseBucketKey", "aws:kms", "AES256"]}),
        "SSE-S3 by default, KMS when a key is given"
    );
    assert_eq!(
        sse["KMSMasterKeyID"],
        json!({"Fn::If": ["UseBucketKey", {"Ref": "BucketKmsKeyArn"}, {"Ref": "AWS::NoValue"}]})
    );
    assert_eq!(
        p["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "BlockPublicPolicy": true,
               "IgnorePublicAcls": true, "RestrictPublicBuckets": true})
    );
    assert_eq!(
        p["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "BucketOwnerEnforced"
    );
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    let rules = p["LifecycleConfiguration"]["Rules"].as_array().unwrap();
    let expiring: BTreeMap<&str, &Value> = rules
        .iter()
        .filter_map(|r| Some((r["Prefix"].as_str()?, &r["ExpirationInDays"])))
        .collect();
    for (prefix, days) in [
        ("shards/", "ShardRetentionDays"),
        ("metadata/", "ShardRetentionDays"),
        ("evaluations/", "ResultRetentionDays"),
        ("datasets/", "ResultRetentionDays"),
    ] {
        assert_eq!(
            expiring.get(prefix),
            Some(&&json!({"Ref": days})),
            "{prefix}"
        );
    }
    for kept in ["verdicts/", "ledger/", "policies/"] {
        assert!(
            !expiring.contains_key(kept),
            "{kept} is the record: never expired"
        );
    }
    assert!(
        rules
            .iter()
            .any(|r| r["NoncurrentVersionExpiration"]["NoncurrentDays"]
                == json!({"Ref": "NoncurrentVersionRetentionDays"})),
        "old versions expire"
    );
}

/// Equal, ignoring the order of list items.
fn same_set(a: &Value, b: &Value) -> bool {
    let set = |v: &Value| -> BTreeSet<String> {
        match v {
            Value::Array(items) => items.iter().map(Value::to_string).collect(),
            other => BTreeSet::from([other.to_string()]),
        }
    };
    set(a) == set(b)
}

/// A Deny for every principal and `action` on `resources` unless the request came over TLS.
fn assert_denies_insecure_transport(policy: &str, action: &str, resources: &Value) {
    let statements = &resource(policy)["Properties"]["PolicyDocument"]["Statement"];
    let found = statements.as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Deny"
            && s["Principal"] == "*"
            && s["Action"] == action
            && same_set(&s["Resource"], resources)
            && s["Condition"] == json!({"Bool": {"aws:SecureTransport": "false"}})
    });
    assert!(
        found,
        "{policy} must deny {action} without TLS on {resources}"
    );
}

#[test]
fn evaluation_bucket_accepts_tls_only() {
    assert_eq!(
        resource("EvaluationBucketPolicy")["Properties"]["Bucket"],
        json!({"Ref": "EvaluationBucket"})
    );
    let both = json!([{"Fn::GetAtt": ["EvaluationBucket", "Arn"]}, {"Fn::Sub": "${EvaluationBucket.Arn}/*"}]);
    assert_denies_insecure_transport("EvaluationBucketPolicy", "s3:*", &both);
    let statements =
        &resource("EvaluationBucketPolicy")["Properties"]["PolicyDocument"]["Statement"];
    assert!(
        statements
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"] == json!({"NumericLessThan": {"s3:TlsVersion": "1.2"}})),
        "TLS older than 1.2 is refused"
    );
    assert!(
        statements
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Effect"] == "Deny"),
        "the bucket policy only ever denies; access comes from the roles"
    );
}

#[test]
fn evaluation_bucket_notifies_without_circular_dependencies() {
    let p = &resource("EvaluationBucket")["Properties"];
    let configs = p["NotificationConfiguration"]["LambdaConfigurations"]
        .as_array()
        .unwrap();
    assert_eq!(
        configs[0],
        json!({"Event": "s3:ObjectCreated:*",
               "Function": {"Fn::GetAtt": ["SubmitEvaluationFunction", "Arn"]},
               "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "datasets/"},
                                               {"Name": "suffix", "Value": ".jsonl"}]}}})
    );
    assert_eq!(configs[1]["Fn::If"][0], "NotifyCheckGates");
    assert_eq!(
        configs[1]["Fn::If"][1]["Filter"]["S3Key"]["Rules"],
        json!([{"Name": "prefix", "Value": "evaluations/"}, {"Name": "suffix", "Value": "_output.jsonl"}])
    );
    // Functions, roles and permissions name the bucket by its computed name, never by a
    // reference to the bucket resource (which references them through its notifications).
    for (name, r) in resources() {
        if ["EvaluationBucket", "EvaluationBucketPolicy"].contains(&name.as_str()) {
            continue;
        }
        let text = r.to_string();
        assert!(
            !text.contains("\"EvaluationBucket\"") && !text.contains("EvaluationBucket."),
            "{name} references the bucket resource: circular dependency"
        );
    }
    // The permissions S3 needs exist before the notification is configured, limited to this
    // bucket and account.
    for perm in ["SubmitEvaluationS3Permission", "CheckGatesS3Permission"] {
        assert!(
            strings(&resource("EvaluationBucket")["DependsOn"]).contains(&perm.to_owned()),
            "{perm}"
        );
        let p = &resource(perm)["Properties"];
        assert_eq!(p["Principal"], "s3.amazonaws.com");
        assert_eq!(p["SourceAccount"], json!({"Ref": "AWS::AccountId"}));
        assert_eq!(p["SourceArn"], bucket_arn(""));
    }
    let env = &template()["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        env[evalgate::config::BUCKET],
        json!({"Fn::Sub": BUCKET_NAME})
    );
}

#[test]
fn alert_topic_is_encrypted_and_tls_only() {
    let topic = &resource("AlertTopic")["Properties"];
    assert_eq!(
        topic["KmsMasterKeyId"],
        json!({"Fn::If": ["UseAlertTopicKey", {"Ref": "AlertTopicKmsKeyArn"}, "alias/aws/sns"]})
    );
    assert_denies_insecure_transport(
        "AlertTopicPolicy",
        "sns:Publish",
        &json!({"Ref": "AlertTopic"}),
    );
}

#[test]
fn dead_letter_queues_are_encrypted_and_tls_only() {
    let queues = resources_of_type("AWS::SQS::Queue");
    assert_eq!(queues.len(), 4);
    let arns: Vec<Value> = queues
        .iter()
        .map(|(name, q)| {
            assert_eq!(q["Properties"]["SqsManagedSseEnabled"], true, "{name}");
            json!({"Fn::GetAtt": [name, "Arn"]})
        })
        .collect();
    assert_denies_insecure_transport("DeadLetterQueuePolicy", "sqs:*", &Value::Array(arns));
}

// ------------------------------------------------------------------------------------------
// Functions
// ------------------------------------------------------------------------------------------

/// The binaries of the workspace's function packages (`functions/*`), from `cargo metadata`.
fn workspace_function_binaries() -> BTreeSet<String> {
    let root = evalgate_tests::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions_dir = root.join("functions");
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| PathBuf::from(p["manifest_path"].as_str().unwrap()).starts_with(&functions_dir))
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| strings(&t["kind"]).contains(&"bin".to_owned()))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn functions() -> Vec<(&'static str, &'static Value)> {
    resources_of_type("AWS::Serverless::Function")
}

/// A function property, falling back to `Globals.Function`.
fn property<'a>(function: &'a Value, name: &str) -> &'a Value {
    let own = &function["Properties"][name];
    if own.is_null() {
        &template()["Globals"]["Function"][name]
    } else {
        own
    }
}

#[test]
fn every_function_is_a_workspace_binary_built_with_cargo_lambda() {
    let binaries = workspace_function_binaries();
    assert_eq!(binaries.len(), 4, "{binaries:?}");
    let mut built = BTreeSet::new();
    for (name, f) in functions() {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} names no Binary"));
        assert!(
            binaries.contains(binary),
            "{name} builds {binary:?}, which is not a binary of functions/*: {binaries:?}"
        );
        assert!(built.insert(binary), "{binary} built twice");
        // CodeUri is the workspace root (relative to infra/): one shared target directory.
        let code_uri = f["Properties"]["CodeUri"].as_str().unwrap();
        let manifest = template_path()
            .parent()
            .unwrap()
            .join(code_uri)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
            panic!("{name}: CodeUri {code_uri:?}: {}: {e}", manifest.display())
        });
        assert!(
            text.contains("[workspace]"),
            "{name}: CodeUri is not the workspace root"
        );
    }
    assert_eq!(
        built.len(),
        binaries.len(),
        "every function binary is deployed"
    );
}

#[test]
fn every_function_runs_on_arm64_al2023_with_json_logs_tracing_limits_and_a_dead_letter_queue() {
    for (name, f) in functions() {
        assert_eq!(property(f, "Runtime"), "provided.al2023", "{name}");
        assert_eq!(property(f, "Architectures"), &json!(["arm64"]), "{name}");
        assert_eq!(property(f, "Handler"), "bootstrap", "{name}");
        assert_eq!(property(f, "Tracing"), "Active", "{name}");
        let memory = property(f, "MemorySize").as_u64().unwrap_or(0);
        assert!(
            (128..=10240).contains(&memory),
            "{name}: MemorySize {memory}"
        );
        let timeout = property(f, "Timeout").as_u64().unwrap_or(0);
        assert!((1..=900).contains(&timeout), "{name}: Timeout {timeout}");
        let logging = property(f, "LoggingConfig");
        assert_eq!(logging["LogFormat"], "JSON", "{name}");
        let group = name.replace("Function", "LogGroup");
        assert_eq!(logging["LogGroup"], json!({"Ref": group}), "{name}");
        assert_eq!(
            resource(&group)["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{group}"
        );
        // Its own role, no SAM policy templates (which would add managed policies unseen here).
        assert!(f["Properties"].get("Policies").is_none(), "{name}");
        let role = name.replace("Function", "Role");
        assert_eq!(
            f["Properties"]["Role"],
            json!({"Fn::GetAtt": [role, "Arn"]}),
            "{name}"
        );
        assert!(
            resource(&role)["Properties"]
                .get("ManagedPolicyArns")
                .is_none(),
            "{role}"
        );
        let on_failure = &f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
        let queue = name.replace("Function", "DeadLetterQueue");
        assert_eq!(on_failure["Type"], "SQS", "{name}");
        assert_eq!(
            on_failure["Destination"],
            json!({"Fn::GetAtt": [queue, "Arn"]}),
            "{name}"
        );
    }
}

/// The `EVALGATE_*` variables `shared/src/config.rs` defines: (constant, variable).
fn config_variables() -> Vec<(String, String)> {
    let path = evalgate_tests::repo_root().join("shared/src/config.rs");
    let text = std::fs::read_to_string(&path).expect("read shared/src/config.rs");
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = \"")?;
            let value = value.strip_suffix("\";")?;
            value
                .starts_with("EVALGATE_")
                .then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    // The parse sees what the crate exports.
    for (name, value) in [
        ("BUCKET", evalgate::config::BUCKET),
        ("EVENT_BUS", evalgate::config::EVENT_BUS),
        ("BEDROCK_ROLE_ARN", evalgate::config::BEDROCK_ROLE_ARN),
        ("TOPIC_ARN", evalgate::config::TOPIC_ARN),
    ] {
        assert!(
            vars.contains(&(name.to_owned(), value.to_owned())),
            "{name} = {value:?} not found in {}",
            path.display()
        );
    }
    vars
}

/// The non-test source of a function package (`functions/<binary>/src/**.rs`, each file cut at
/// its `#[cfg(test)]`).
fn function_source(binary: &str) -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push_str(text.split("#[cfg(test)]").next().unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    walk(
        &evalgate_tests::repo_root()
            .join("functions")
            .join(binary)
            .join("src"),
        &mut out,
    );
    out
}

/// Whether `ident` occurs in `text` as a whole identifier.
fn mentions(text: &str, ident: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(ident).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + ident.len()..].chars().next().is_some_and(word)
    })
}

#[test]
fn every_function_gets_exactly_the_configuration_its_code_reads() {
    use evalgate::config::{BEDROCK_ROLE_ARN, EVENT_BUS, TOPIC_ARN};
    let vars = config_variables();
    let globals: BTreeSet<String> = template()["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (name, f) in functions() {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let source = function_source(binary);
        let read: BTreeSet<String> = vars
            .iter()
            .filter(|(constant, _)| mentions(&source, constant))
            .map(|(_, var)| var.clone())
            .collect();
        let own: BTreeSet<String> = f["Properties"]["Environment"]["Variables"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let set: BTreeSet<String> = globals.union(&own).cloned().collect();
        assert_eq!(
            set, read,
            "{name} ({binary}): template environment vs what its code reads"
        );
    }
    // The values: the bus send-alert listens on (the default bus would lose every event), the
    // role the template creates for Bedrock, the topic it creates.
    let env =
        |f: &str, var: &str| resource(f)["Properties"]["Environment"]["Variables"][var].clone();
    for f in [
        "SubmitEvaluationFunction",
        "CheckGatesFunction",
        "EvaluateRollbackFunction",
    ] {
        assert_eq!(env(f, EVENT_BUS), json!({"Ref": "EventBus"}), "{f}");
    }
    assert_eq!(
        resource("SendAlertFunction")["Properties"]["Events"]["EvalgateEvents"]["Properties"]["EventBusName"],
        json!({"Ref": "EventBus"})
    );
    assert_eq!(
        env("SubmitEvaluationFunction", BEDROCK_ROLE_ARN),
        json!({"Fn::GetAtt": ["BedrockEvaluationRole", "Arn"]})
    );
    assert_eq!(
        env("SendAlertFunction", TOPIC_ARN),
        json!({"Ref": "AlertTopic"})
    );
}

#[test]
fn timeouts_leave_room_for_what_the_code_waits_for() {
    let timeout = |f: &str| {
        Duration::from_secs(
            property(resource(f), "Timeout")
                .as_u64()
                .unwrap_or_else(|| panic!("{f} has no numeric Timeout")),
        )
    };
    // A re-delivery of an alarm event waits until the lease after the first decision, then
    // finishes the rollback itself: pointer read and move, event, record (with SDK retries).
    let lease = evalgate::rollback::Options::default().lease;
    assert!(
        timeout("EvaluateRollbackFunction") >= lease + Duration::from_secs(30),
        "evaluate-rollback's timeout must exceed its {lease:?} lease plus the rollback itself"
    );
    // send-alert waits for a concurrent delivery's claim, keeps 5 s before its deadline, and
    // then reads the ledger and publishes (docs/alerts.md: at least 30 s).
    let wait = evalgate::alert::deliver::Timing::until(chrono::Utc::now()).busy_wait;
    assert!(
        timeout("SendAlertFunction") >= wait + Duration::from_secs(20),
        "send-alert's timeout must exceed its {wait:?} wait for a concurrent delivery plus its calls"
    );
    // check-gates stops starting releases 30 s (at most a quarter of the time) before its
    // deadline; it needs minutes for a backlog of releases, each with many result files.
    assert!(timeout("CheckGatesFunction") >= Duration::from_secs(120));
    // submit-evaluation reads a large dataset twice and submits up to 100 shards.
    assert!(timeout("SubmitEvaluationFunction") >= Duration::from_secs(120));
}

#[test]
fn outputs_name_the_bucket_topic_role_and_dashboard() {
    let outputs = template()["Outputs"].as_object().unwrap();
    for name in [
        "EvaluationBucketName",
        "AlertTopicArn",
        "BedrockEvaluationRoleArn",
        "DashboardUrl",
    ] {
        assert!(outputs.contains_key(name), "missing output {name}");
    }
}
