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
    // Every prefix is one evalgate's layout uses.
    for (_, _, prefixes) in REVIEWED_PREFIXES {
        for p in *prefixes {
            assert!(
                [
                    evalgate::layout::DATASETS_PREFIX,
                    evalgate::layout::POLICIES_PREFIX
                ]
                .contains(p)
                    || [
                        "shards/",
                        "metadata/",
                        "evaluations/",
                        "rejections/",
                        "verdicts/",
                        "ledger/"
                    ]
                    .iter()
                    .any(|top| p.starts_with(top)),
                "{p} is not part of the bucket layout"
            );
        }
    }
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

#[test]
fn every_function_gets_the_configuration_it_reads() {
    use evalgate::config::{BEDROCK_ROLE_ARN, EVENT_BUS, TOPIC_ARN};
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        (
            "SubmitEvaluationFunction",
            vec![EVENT_BUS, BEDROCK_ROLE_ARN],
        ),
        ("CheckGatesFunction", vec![EVENT_BUS]),
        ("EvaluateRollbackFunction", vec![EVENT_BUS]),
        ("SendAlertFunction", vec![TOPIC_ARN]),
    ]);
    for (name, f) in functions() {
        let vars: BTreeSet<&str> = f["Properties"]["Environment"]["Variables"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let want: BTreeSet<&str> = expected[name].iter().copied().collect();
        assert_eq!(vars, want, "{name}");
    }
    let f = resource("SubmitEvaluationFunction");
    assert_eq!(
        f["Properties"]["Environment"]["Variables"][BEDROCK_ROLE_ARN],
        json!({"Fn::GetAtt": ["BedrockEvaluationRole", "Arn"]})
    );
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
