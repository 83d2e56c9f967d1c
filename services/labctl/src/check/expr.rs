//! A rule's expression steps, evaluated as Grafana's server-side expressions do — for exactly
//! the constructs the lab's rule set uses: `reduce` with the `last` reducer in the default
//! (strict) mode, `threshold` with one `gt` or `lt` evaluator, and `math` with comparisons,
//! `&&`, `||`, `!` and arithmetic over `$refId` variables. Anything else is refused by name.
//!
//! Semantics follow Grafana's `mathexp` (from bosun) for math: NaN propagates through every
//! operator except the short circuits (`0 && x` is 0, `1 || x` is 1); comparisons give 1 or 0;
//! series from two inputs are joined on identical labels or on a label subset, and two single
//! items are joined whatever their labels. A threshold compares as Go does (`pkg/expr/threshold.go`
//! since Grafana 11.1, PR #86062): NaN is never above or below anything, so it gives 0. A
//! condition value of 0 is Normal, any other value (NaN included) Alerting, a null NoData
//! (`pkg/services/ngalert/eval/eval.go`).

use std::collections::{BTreeMap, BTreeSet};

use alertlab_grafana::{model::Rule, Language};
use serde::Serialize;
use serde_json::Value;

pub type Labels = BTreeMap<String, String>;

/// One number with its labels (an instant-vector sample, a SQL row, an expression result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub labels: Labels,
    pub value: Option<f64>,
}

impl Series {
    pub fn new(labels: &[(&str, &str)], value: Option<f64>) -> Self {
        Self {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }
}

/// What a data-source query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Data(Vec<Series>),
    Error(String),
}

/// The reducers labctl supports (the rule set's), by name.
pub const REDUCERS: &[&str] = &["last"];
/// The threshold evaluators labctl supports.
pub const EVALUATORS: &[&str] = &["gt", "lt"];
/// The expression types labctl supports.
pub const EXPRESSION_TYPES: &[&str] = &["reduce", "threshold", "math"];

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Query {
        language: Language,
    },
    Reduce {
        input: String,
    },
    Threshold {
        input: String,
        evaluator: Evaluator,
        param: f64,
    },
    Math {
        expr: Expr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evaluator {
    Gt,
    Lt,
}

/// A rule, checked for support and ready to evaluate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: BTreeMap<String, Step>,
    pub condition: String,
}

impl Plan {
    /// The data-source queries (refId, language), in refId order.
    pub fn queries(&self) -> Vec<(String, Language)> {
        self.steps
            .iter()
            .filter_map(|(r, s)| match s {
                Step::Query { language } => Some((r.clone(), *language)),
                _ => None,
            })
            .collect()
    }
}

/// Builds the plan of `rule`; the error names the construct labctl does not support.
pub fn plan(rule: &Rule, datasources: &BTreeMap<String, String>) -> Result<Plan, String> {
    let mut steps = BTreeMap::new();
    for q in &rule.data {
        let r = q.ref_id.clone();
        let step = if q.is_expression() {
            let kind = q.expression_type().unwrap_or("");
            match kind {
                "reduce" => {
                    let reducer = q
                        .model
                        .get("reducer")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !REDUCERS.contains(&reducer.as_str()) {
                        return Err(format!(
                            "reducer `{reducer}` (refId {r}) is not supported by labctl check (supported: {})",
                            REDUCERS.join(", ")
                        ));
                    }
                    let mode = q
                        .model
                        .pointer("/settings/mode")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !mode.is_empty() {
                        return Err(format!(
                            "reduce mode `{mode}` (refId {r}) is not supported by labctl check (only the default strict mode)"
                        ));
                    }
                    Step::Reduce {
                        input: input_ref(&q.model, &r)?,
                    }
                }
                "threshold" => {
                    let conditions = q
                        .model
                        .get("conditions")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if conditions.len() != 1 {
                        return Err(format!(
                            "threshold (refId {r}) needs exactly one condition, has {}",
                            conditions.len()
                        ));
                    }
                    let condition = &conditions[0];
                    if condition.get("unloadEvaluator").is_some() {
                        return Err(format!(
                            "threshold unloadEvaluator (refId {r}, recovery threshold) is not supported by labctl check"
                        ));
                    }
                    let kind = condition
                        .pointer("/evaluator/type")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let evaluator = match kind {
                        "gt" => Evaluator::Gt,
                        "lt" => Evaluator::Lt,
                        other => {
                            return Err(format!(
                                "threshold evaluator `{other}` (refId {r}) is not supported by labctl check (supported: {})",
                                EVALUATORS.join(", ")
                            ))
                        }
                    };
                    let param = condition
                        .pointer("/evaluator/params/0")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| format!("threshold (refId {r}) has no numeric params[0]"))?;
                    Step::Threshold {
                        input: input_ref(&q.model, &r)?,
                        evaluator,
                        param,
                    }
                }
                "math" => {
                    let text = q
                        .model
                        .get("expression")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("math (refId {r}) has no expression"))?;
                    Step::Math {
                        expr: parse_math(text).map_err(|e| format!("math (refId {r}): {e}"))?,
                    }
                }
                other => {
                    return Err(format!(
                        "expression type `{other}` (refId {r}) is not supported by labctl check (supported: {})",
                        EXPRESSION_TYPES.join(", ")
                    ))
                }
            }
        } else {
            let kind = datasources.get(&q.datasource_uid).ok_or_else(|| {
                format!(
                    "data source `{}` (refId {r}) is not in the data sources file",
                    q.datasource_uid
                )
            })?;
            let language = Language::of(kind).ok_or_else(|| {
                format!("data source type `{kind}` (refId {r}) is not supported by labctl check")
            })?;
            Step::Query { language }
        };
        if steps.insert(r.clone(), step).is_some() {
            return Err(format!("refId {r} appears twice"));
        }
    }
    if !steps.contains_key(&rule.condition) {
        return Err(format!(
            "condition `{}` is not a refId of the rule",
            rule.condition
        ));
    }
    let plan = Plan {
        steps,
        condition: rule.condition.clone(),
    };
    for (r, step) in &plan.steps {
        for input in step_inputs(step) {
            if !plan.steps.contains_key(&input) {
                return Err(format!(
                    "refId {r} reads `{input}`, which the rule does not have"
                ));
            }
        }
    }
    Ok(plan)
}

fn input_ref(model: &Value, r: &str) -> Result<String, String> {
    model
        .get("expression")
        .and_then(Value::as_str)
        .map(|e| e.trim().trim_start_matches('$').to_owned())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| format!("refId {r} has no input (`expression`)"))
}

fn step_inputs(step: &Step) -> Vec<String> {
    match step {
        Step::Query { .. } => vec![],
        Step::Reduce { input } | Step::Threshold { input, .. } => vec![input.clone()],
        Step::Math { expr } => expr.variables(),
    }
}

// ------------------------------------------------------------------------------------------
// Evaluation

/// One alert instance of the condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceResult {
    pub labels: Labels,
    /// The condition's value (0 is Normal).
    pub value: Option<f64>,
    pub state: CondState,
    /// The values of the condition's inputs for this instance (Grafana's `$values`), e.g.
    /// `B` for a threshold on a reduce.
    pub inputs: BTreeMap<String, Option<f64>>,
}

/// The state an instance's condition gives (before the pending period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum CondState {
    Normal,
    Firing,
    NoData,
    Error,
}

impl CondState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Firing => "Firing",
            Self::NoData => "NoData",
            Self::Error => "Error",
        }
    }
}

/// The outcome of one rule evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Instances(Vec<InstanceResult>),
    /// A query returned nothing: Grafana's NoData for the whole rule.
    NoData {
        ref_id: String,
    },
    /// A query failed, or the result cannot become instances: Grafana's Error.
    Error(String),
}

/// Evaluates the plan over the data-source results (by refId).
pub fn evaluate(plan: &Plan, results: &BTreeMap<String, QueryResult>) -> Outcome {
    for (r, _) in plan.queries() {
        match results.get(&r) {
            None => return Outcome::Error(format!("no result for refId {r}")),
            Some(QueryResult::Error(e)) => return Outcome::Error(format!("{r}: {e}")),
            Some(QueryResult::Data(d)) if d.is_empty() => {
                return Outcome::NoData { ref_id: r.clone() }
            }
            Some(QueryResult::Data(d)) => {
                if let Some(dup) = duplicate_labels(d) {
                    return Outcome::Error(format!(
                        "{r}: frame cannot uniquely be identified by its labels ({dup})"
                    ));
                }
            }
        }
    }
    let mut memo: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    let result = match eval_ref(plan, &plan.condition, results, &mut memo, 0) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    if result.is_empty() {
        return Outcome::NoData {
            ref_id: plan.condition.clone(),
        };
    }
    if let Some(dup) = duplicate_labels(&result) {
        return Outcome::Error(format!(
            "{}: frame cannot uniquely be identified by its labels ({dup})",
            plan.condition
        ));
    }
    let input_refs = plan
        .steps
        .get(&plan.condition)
        .map(step_inputs)
        .unwrap_or_default();
    Outcome::Instances(
        result
            .into_iter()
            .map(|s| InstanceResult {
                state: match s.value {
                    None => CondState::NoData,
                    Some(0.0) => CondState::Normal,
                    Some(_) => CondState::Firing,
                },
                inputs: input_refs
                    .iter()
                    .map(|r| (r.clone(), input_value(memo.get(r), &s.labels)))
                    .collect(),
                labels: s.labels,
                value: s.value,
            })
            .collect(),
    )
}

/// The value of the series of `input` that belongs to an instance with `labels`.
fn input_value(input: Option<&Vec<Series>>, labels: &Labels) -> Option<f64> {
    let series = input?;
    series
        .iter()
        .find(|s| s.labels == *labels)
        .or_else(|| series.iter().find(|s| is_subset(&s.labels, labels)))
        .or_else(|| (series.len() == 1).then(|| &series[0]))
        .and_then(|s| s.value)
}

fn duplicate_labels(series: &[Series]) -> Option<String> {
    let mut seen = BTreeSet::new();
    for s in series {
        if !seen.insert(&s.labels) {
            return Some(format!("{:?}", s.labels));
        }
    }
    None
}

fn eval_ref(
    plan: &Plan,
    r: &str,
    results: &BTreeMap<String, QueryResult>,
    memo: &mut BTreeMap<String, Vec<Series>>,
    depth: usize,
) -> Result<Vec<Series>, String> {
    if let Some(v) = memo.get(r) {
        return Ok(v.clone());
    }
    if depth > 32 {
        return Err(format!(
            "refId {r}: expressions refer to each other in a cycle"
        ));
    }
    let step = plan
        .steps
        .get(r)
        .ok_or_else(|| format!("unknown refId {r}"))?;
    let out = match step {
        Step::Query { .. } => match results.get(r) {
            Some(QueryResult::Data(d)) => d.clone(),
            Some(QueryResult::Error(e)) => return Err(e.clone()),
            None => return Err(format!("no result for refId {r}")),
        },
        Step::Reduce { input } => eval_ref(plan, input, results, memo, depth + 1)?
            .into_iter()
            // `last` of an instant sample or a table row is the value itself; the strict
            // mode turns a null into NaN.
            .map(|s| Series {
                value: Some(s.value.unwrap_or(f64::NAN)),
                labels: s.labels,
            })
            .collect(),
        Step::Threshold {
            input,
            evaluator,
            param,
        } => {
            // Go's comparisons: false for NaN, so a threshold on NaN is 0 (Normal).
            let holds = |v: f64| match evaluator {
                Evaluator::Gt => v > *param,
                Evaluator::Lt => v < *param,
            };
            eval_ref(plan, input, results, memo, depth + 1)?
                .into_iter()
                .map(|s| Series {
                    value: s.value.map(|v| if holds(v) { 1.0 } else { 0.0 }),
                    labels: s.labels,
                })
                .collect()
        }
        Step::Math { expr } => {
            let mut vars = BTreeMap::new();
            for name in expr.variables() {
                let v = eval_ref(plan, &name, results, memo, depth + 1)?;
                vars.insert(name, v);
            }
            match eval_expr(expr, &vars)? {
                Val::Scalar(v) => vec![Series {
                    labels: Labels::new(),
                    value: Some(v),
                }],
                Val::Set(s) => s,
            }
        }
    };
    memo.insert(r.to_owned(), out.clone());
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Math

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Var(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Expr::Num(_) => {}
            Expr::Var(v) => out.push(v.clone()),
            Expr::Unary(_, e) => e.collect(out),
            Expr::Binary(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }
}

/// Grafana's (bosun's) binary operator on two numbers.
pub fn binary_op(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Or if a != 0.0 => return 1.0,
        BinOp::And if a == 0.0 => return 0.0,
        _ => {}
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    let truth = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        BinOp::Or => truth(a != 0.0 || b != 0.0),
        BinOp::And => truth(a != 0.0 && b != 0.0),
        BinOp::Eq => truth(a == b),
        BinOp::Ne => truth(a != b),
        BinOp::Lt => truth(a < b),
        BinOp::Le => truth(a <= b),
        BinOp::Gt => truth(a > b),
        BinOp::Ge => truth(a >= b),
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
    }
}

fn unary_op(op: UnOp, a: f64) -> f64 {
    match op {
        UnOp::Neg => -a,
        UnOp::Not => {
            if a.is_nan() {
                f64::NAN
            } else if a == 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Val {
    Scalar(f64),
    Set(Vec<Series>),
}

fn eval_expr(expr: &Expr, vars: &BTreeMap<String, Vec<Series>>) -> Result<Val, String> {
    Ok(match expr {
        Expr::Num(n) => Val::Scalar(*n),
        Expr::Var(v) => Val::Set(
            vars.get(v)
                .cloned()
                .ok_or_else(|| format!("unknown variable ${v}"))?,
        ),
        Expr::Unary(op, e) => match eval_expr(e, vars)? {
            Val::Scalar(n) => Val::Scalar(unary_op(*op, n)),
            Val::Set(s) => Val::Set(
                s.into_iter()
                    .map(|x| Series {
                        value: x.value.map(|v| unary_op(*op, v)),
                        labels: x.labels,
                    })
                    .collect(),
            ),
        },
        Expr::Binary(op, a, b) => {
            let (a, b) = (eval_expr(a, vars)?, eval_expr(b, vars)?);
            let apply = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => Some(binary_op(*op, x, y)),
                _ => None,
            };
            match (a, b) {
                (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(binary_op(*op, x, y)),
                (Val::Scalar(x), Val::Set(s)) => Val::Set(
                    s.into_iter()
                        .map(|e| Series {
                            value: apply(Some(x), e.value),
                            labels: e.labels,
                        })
                        .collect(),
                ),
                (Val::Set(s), Val::Scalar(y)) => Val::Set(
                    s.into_iter()
                        .map(|e| Series {
                            value: apply(e.value, Some(y)),
                            labels: e.labels,
                        })
                        .collect(),
                ),
                (Val::Set(l), Val::Set(r)) => Val::Set(union(&l, &r, apply)),
            }
        }
    })
}

fn is_subset(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

/// Grafana's union of two sets: pairs with identical labels or where one's labels are a
/// subset of the other's (the result takes the larger set); two single items are joined
/// whatever their labels.
fn union(
    l: &[Series],
    r: &[Series],
    apply: impl Fn(Option<f64>, Option<f64>) -> Option<f64>,
) -> Vec<Series> {
    let mut out = Vec::new();
    for a in l {
        for b in r {
            let labels = if a.labels == b.labels || is_subset(&b.labels, &a.labels) {
                a.labels.clone()
            } else if is_subset(&a.labels, &b.labels) {
                b.labels.clone()
            } else {
                continue;
            };
            out.push(Series {
                labels,
                value: apply(a.value, b.value),
            });
        }
    }
    if out.is_empty() && l.len() == 1 && r.len() == 1 {
        let mut labels = l[0].labels.clone();
        labels.extend(r[0].labels.clone());
        out.push(Series {
            labels,
            value: apply(l[0].value, r[0].value),
        });
    }
    out
}

// Parser ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Var(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    const OPS: [&str; 15] = [
        "&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "!", "**",
    ];
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '$' {
            i += 1;
            let name: String = if chars.get(i) == Some(&'{') {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("unclosed ${")?;
                let n: String = chars[i + 1..i + end].iter().collect();
                i += end + 1;
                n
            } else {
                let n: String = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                i += n.chars().count();
                n
            };
            if name.is_empty() {
                return Err("`$` without a variable name".into());
            }
            out.push(Tok::Var(name));
        } else if c.is_ascii_digit() || c == '.' {
            let n: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '.')
                .collect();
            i += n.chars().count();
            out.push(Tok::Num(
                n.parse().map_err(|_| format!("`{n}` is not a number"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let name: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            return Err(format!(
                "math function or name `{name}` is not supported by labctl check (only $refId variables, numbers and operators)"
            ));
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else {
            let rest: String = chars[i..].iter().take(2).collect();
            let op = OPS
                .iter()
                .filter(|op| rest.starts_with(**op))
                .max_by_key(|op| op.len())
                .ok_or_else(|| format!("unexpected character `{c}`"))?;
            if *op == "**" {
                return Err("operator `**` is not supported by labctl check".into());
            }
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

/// Parses a math expression (`$A < 1 && $B > 0 && $C > 0`).
pub fn parse_math(text: &str) -> Result<Expr, String> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.expr(0)?;
    if p.pos != p.toks.len() {
        return Err(format!(
            "unexpected `{:?}` after the expression",
            p.toks[p.pos]
        ));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Binary operators by precedence level, lowest first.
const LEVELS: [&[(&str, BinOp)]; 5] = [
    &[("||", BinOp::Or)],
    &[("&&", BinOp::And)],
    &[
        ("==", BinOp::Eq),
        ("!=", BinOp::Ne),
        ("<", BinOp::Lt),
        ("<=", BinOp::Le),
        (">", BinOp::Gt),
        (">=", BinOp::Ge),
    ],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
    &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Mod)],
];

impl Parser {
    fn expr(&mut self, level: usize) -> Result<Expr, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.expr(level + 1)?;
        while let Some(Tok::Op(op)) = self.toks.get(self.pos) {
            let Some((_, bin)) = LEVELS[level].iter().find(|(s, _)| s == op) else {
                break;
            };
            self.pos += 1;
            let right = self.expr(level + 1)?;
            left = Expr::Binary(*bin, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Op("-")) => {
                self.pos += 1;
                Ok(Expr::Unary(UnOp::Neg, Box::new(self.unary()?)))
            }
            Some(Tok::Op("!")) => {
                self.pos += 1;
                Ok(Expr::Unary(UnOp::Not, Box::new(self.unary()?)))
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Num(n))
            }
            Some(Tok::Var(v)) => {
                self.pos += 1;
                Ok(Expr::Var(v))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.expr(0)?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(t) => Err(format!("unexpected `{t:?}`")),
            None => Err("the expression ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use alertlab_grafana::{model::RulesFile, Profile};
    use serde_json::json;

    use super::*;
    use crate::rules::{Catalog, EMBEDDED_DATASOURCES, EMBEDDED_RULES};

    fn catalog() -> Catalog {
        Catalog::from_texts(EMBEDDED_RULES, EMBEDDED_DATASOURCES, Profile::Demo).unwrap()
    }

    fn data(series: Vec<Series>) -> QueryResult {
        QueryResult::Data(series)
    }

    fn run(uid: &str, results: &[(&str, QueryResult)]) -> Outcome {
        let c = catalog();
        let rule = &c.by_uid(uid).unwrap().rule;
        let p = plan(rule, &c.datasources).unwrap();
        let results = results
            .iter()
            .map(|(r, q)| (r.to_string(), q.clone()))
            .collect();
        evaluate(&p, &results)
    }

    fn states(outcome: &Outcome) -> Vec<CondState> {
        match outcome {
            Outcome::Instances(i) => i.iter().map(|i| i.state).collect(),
            other => panic!("not instances: {other:?}"),
        }
    }

    #[test]
    fn every_rule_of_the_lab_is_supported() {
        let c = catalog();
        for r in &c.rules {
            plan(&r.rule, &c.datasources).unwrap_or_else(|e| panic!("{}: {e}", r.uid));
        }
    }

    #[test]
    fn reduce_and_threshold_give_one_instance_per_series() {
        let up = data(vec![
            Series::new(&[("service", "api")], Some(1.0)),
            Series::new(&[("service", "inventory")], Some(0.0)),
        ]);
        let out = run("alertlab-service-down", &[("A", up)]);
        assert_eq!(states(&out), vec![CondState::Normal, CondState::Firing]);
        let Outcome::Instances(instances) = out else {
            panic!()
        };
        assert_eq!(
            instances[1].inputs,
            BTreeMap::from([("B".to_string(), Some(0.0))])
        );
        assert_eq!(instances[1].value, Some(1.0));
    }

    #[test]
    fn a_threshold_on_nan_is_normal_and_null_is_no_data() {
        let out = run(
            "alertlab-high-error-rate",
            &[(
                "A",
                data(vec![Series::new(&[("service", "api")], Some(f64::NAN))]),
            )],
        );
        assert_eq!(states(&out), vec![CondState::Normal]);
        // SQL: no reduce; a NULL number is NoData for that instance.
        let out = run(
            "alertlab-failed-orders",
            &[("A", data(vec![Series::new(&[], None)]))],
        );
        assert_eq!(states(&out), vec![CondState::NoData]);
    }

    #[test]
    fn sql_rows_are_instances_and_thresholds_apply_per_row() {
        let rows = data(vec![
            Series::new(&[("product_id", "1"), ("product_name", "a")], Some(160.0)),
            Series::new(&[("product_id", "7"), ("product_name", "b")], Some(-12.0)),
            Series::new(&[("product_id", "8"), ("product_name", "c")], Some(1.0)),
        ]);
        let out = run("alertlab-low-inventory", &[("A", rows)]);
        assert_eq!(
            states(&out),
            vec![CondState::Normal, CondState::Firing, CondState::Normal]
        );
    }

    #[test]
    fn empty_results_are_no_data_and_errors_are_errors() {
        assert_eq!(
            run("alertlab-brute-force-login", &[("A", data(vec![]))]),
            Outcome::NoData { ref_id: "A".into() }
        );
        assert_eq!(
            run(
                "alertlab-low-stock",
                &[("A", QueryResult::Error("bad_data: parse error".into()))]
            ),
            Outcome::Error("A: bad_data: parse error".into())
        );
        let dup = data(vec![
            Series::new(&[], Some(1.0)),
            Series::new(&[], Some(2.0)),
        ]);
        assert!(matches!(
            run("alertlab-failed-orders", &[("A", dup)]),
            Outcome::Error(e) if e.contains("uniquely")
        ));
    }

    #[test]
    fn the_order_drought_math_joins_the_three_inputs() {
        let case = |a: f64, b: f64, c: f64| {
            states(&run(
                "alertlab-order-drought",
                &[
                    ("A", data(vec![Series::new(&[], Some(a))])),
                    ("B", data(vec![Series::new(&[], Some(b))])),
                    ("C", data(vec![Series::new(&[], Some(c))])),
                ],
            ))
        };
        assert_eq!(case(0.0, 40.0, 1.0), vec![CondState::Firing]);
        // Unlike a threshold, math propagates NaN, and a NaN condition is Alerting.
        assert_eq!(case(f64::NAN, 40.0, 1.0), vec![CondState::Firing]);
        let Outcome::Instances(i) = run(
            "alertlab-order-drought",
            &[
                ("A", data(vec![Series::new(&[], Some(0.0))])),
                ("B", data(vec![Series::new(&[], Some(40.0))])),
                ("C", data(vec![Series::new(&[], Some(1.0))])),
            ],
        ) else {
            panic!()
        };
        assert_eq!(
            i[0].inputs,
            BTreeMap::from([
                ("A".to_string(), Some(0.0)),
                ("B".to_string(), Some(40.0)),
                ("C".to_string(), Some(1.0))
            ])
        );
        assert_eq!(case(3.0, 40.0, 1.0), vec![CondState::Normal]);
        assert_eq!(case(0.0, 0.0, 1.0), vec![CondState::Normal]);
        assert_eq!(case(0.0, 40.0, 0.0), vec![CondState::Normal]);
    }

    #[test]
    fn math_follows_grafana_semantics() {
        let e = parse_math("$A < 1 && ${B} > 0 || !($C * 2 >= 4) - -1").unwrap();
        assert_eq!(e.variables(), vec!["A", "B", "C"]);
        assert_eq!(binary_op(BinOp::And, 0.0, f64::NAN), 0.0);
        assert_eq!(binary_op(BinOp::Or, 1.0, f64::NAN), 1.0);
        assert!(binary_op(BinOp::Gt, f64::NAN, 1.0).is_nan());
        assert!(binary_op(BinOp::And, 1.0, f64::NAN).is_nan());
        // Union on label subsets.
        let vars = BTreeMap::from([
            (
                "A".to_string(),
                vec![
                    Series::new(&[("service", "api")], Some(2.0)),
                    Series::new(&[("service", "web")], Some(0.0)),
                ],
            ),
            ("B".to_string(), vec![Series::new(&[], Some(1.0))]),
        ]);
        let Val::Set(s) = eval_expr(&parse_math("$A > $B").unwrap(), &vars).unwrap() else {
            panic!()
        };
        assert_eq!(
            s,
            vec![
                Series::new(&[("service", "api")], Some(1.0)),
                Series::new(&[("service", "web")], Some(0.0)),
            ]
        );
    }

    #[test]
    fn unsupported_constructs_are_refused_by_name() {
        let c = catalog();
        let rule = |step: serde_json::Value| {
            let file: RulesFile = serde_json::from_value(
                json!({"groups": [{"name": "g", "interval": "10s", "rules": [{
                    "uid": "x", "title": "x", "condition": "B",
                    "data": [
                        {"refId": "A", "datasourceUid": "prometheus", "model": {"expr": "up"}},
                        step
                    ]
                }]}]}),
            )
            .unwrap();
            plan(&file.groups[0].rules[0], &c.datasources).unwrap_err()
        };
        let expr = |model: serde_json::Value| json!({"refId": "B", "datasourceUid": "__expr__", "model": model});
        assert!(rule(expr(
            json!({"type": "reduce", "expression": "A", "reducer": "mean"})
        ))
        .contains("reducer `mean`"));
        assert!(rule(expr(json!({"type": "reduce", "expression": "A", "reducer": "last", "settings": {"mode": "dropNN"}})))
            .contains("reduce mode `dropNN`"));
        assert!(rule(expr(json!({"type": "threshold", "expression": "A", "conditions": [{"evaluator": {"type": "within_range", "params": [1, 2]}}]})))
            .contains("evaluator `within_range`"));
        assert!(rule(expr(
            json!({"type": "classic_conditions", "conditions": []})
        ))
        .contains("expression type `classic_conditions`"));
        assert!(rule(expr(json!({"type": "math", "expression": "abs($A) > 1"}))).contains("`abs`"));
        assert!(rule(expr(json!({"type": "resample", "expression": "A"})))
            .contains("expression type `resample`"));
    }
}
