//! The log pipelines of LogQL expressions (the stages after each stream selector), and the
//! rules every pipeline of the lab follows so that a malformed line is neither a query error nor
//! an event:
//!
//! - every pipeline ends its parsing with the error filter `| __error__=""`, after its last
//!   parser: Loki marks a line a parser cannot read with an `__error__` label, and a metric
//!   query over such lines fails (or, under `sum()`, counts them);
//! - `| json` and `| logfmt` name the fields they extract (`| json event="event"`): without
//!   parameters every field, the timestamp included, becomes a label;
//! - `| json` follows the complete-line filter ``|~ `\}$` ``: Loki's `| json field="..."` stops
//!   reading a line once it has found its fields, so a line cut short after the field would not
//!   be an error and would count.

use crate::query::{matching_close, skip_string, unquote};

/// One stage of a LogQL log pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStage {
    /// `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`, `|> "p"`, `!> "p"`: the operator and its
    /// first pattern, unquoted.
    LineFilter { op: String, pattern: String },
    /// `| json ...`, `| logfmt ...`, `| regexp "..."`, `| pattern "..."`, `| unpack`: the
    /// parser's name and its parameters as written (empty when it has none).
    Parser { name: String, params: String },
    /// `| __error__=""`.
    ErrorFilter,
    /// Any other stage (label filters, formatters, drop, keep, unwrap), as written.
    Other(String),
}

/// The parsers of LogQL; each can mark a line with `__error__`.
const PARSERS: [&str; 5] = ["json", "logfmt", "regexp", "pattern", "unpack"];

/// The pattern of the complete-line filter: a line of ours is one JSON object, so it ends in `}`.
const COMPLETE_LINE_PATTERNS: [&str; 2] = ["\\}$", "}$"];

/// The log pipeline after each stream selector of `expr`, in order.
pub fn pipelines(expr: &str) -> Vec<Vec<LogStage>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '[' => i = skip_block(&chars, i),
            // `${variable}` is Grafana's, not a stream selector.
            '$' if chars.get(i + 1) == Some(&'{') => i = skip_block(&chars, i + 1),
            '{' => {
                let close = skip_block(&chars, i);
                let (stages, end) = stages(&chars, close);
                out.push(stages);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Index just past the block opened at `open` (by the bracket there), skipping string
/// literals; the end of the text when it is not closed.
fn skip_block(chars: &[char], open: usize) -> usize {
    (matching_close(chars, open) + 1).min(chars.len())
}

fn skip_spaces(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The stages starting at `start` (just after a selector's `}`), and where they end.
fn stages(chars: &[char], start: usize) -> (Vec<LogStage>, usize) {
    let mut out = Vec::new();
    let mut i = start;
    loop {
        i = skip_spaces(chars, i);
        let (Some(&c), next) = (chars.get(i), chars.get(i + 1).copied()) else {
            break;
        };
        if matches!(c, '|' | '!') && matches!(next, Some('=' | '~' | '>')) {
            let op: String = [c, next.unwrap_or_default()].iter().collect();
            i = skip_spaces(chars, i + 2);
            let mut pattern = String::new();
            if matches!(chars.get(i), Some('"' | '`')) {
                let end = skip_string(chars, i);
                pattern = unquote(&chars[i..end].iter().collect::<String>());
                i = end;
            }
            // Alternatives: `|= "a" or "b"`.
            loop {
                let j = skip_spaces(chars, i);
                let word: String = chars[j..].iter().take(2).collect();
                let after = skip_spaces(chars, j + 2);
                if word == "or" && matches!(chars.get(after), Some('"' | '`')) {
                    i = skip_string(chars, after);
                } else {
                    break;
                }
            }
            out.push(LogStage::LineFilter { op, pattern });
        } else if c == '|' {
            let end = stage_end(chars, i + 1);
            let text: String = chars[i + 1..end].iter().collect();
            out.push(classify(text.trim()));
            i = end;
        } else {
            break;
        }
    }
    (out, i)
}

/// End of a `| stage` that starts at `start`: the next `|` outside strings and parentheses, a
/// range `[`, an unmatched `)`, or the end.
fn stage_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            '(' => depth += 1,
            ')' if depth == 0 => return i,
            ')' => depth -= 1,
            '|' | '[' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

fn classify(text: &str) -> LogStage {
    let name: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let rest = text[name.len()..].trim();
    if PARSERS.contains(&name.as_str()) && !rest.starts_with(['=', '!', '<', '>']) {
        return LogStage::Parser {
            name,
            params: rest.to_string(),
        };
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "__error__=\"\"" || compact == "__error__=``" {
        return LogStage::ErrorFilter;
    }
    LogStage::Other(text.to_string())
}

/// Whether a parser's parameters name no field (flags such as `--strict` aside).
fn extracts_everything(params: &str) -> bool {
    params.split_whitespace().all(|word| word.starts_with("--"))
}

/// What breaks the lab's rules for log pipelines in `expr` (see the module documentation), one
/// message per problem; empty when every pipeline follows them.
pub fn pipeline_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, stages) in pipelines(expr).iter().enumerate() {
        let which = if n == 0 {
            "the log pipeline".to_string()
        } else {
            format!("log pipeline {}", n + 1)
        };
        let last_parser = stages
            .iter()
            .rposition(|s| matches!(s, LogStage::Parser { .. }));
        let error_filter = stages.iter().rposition(|s| *s == LogStage::ErrorFilter);
        match (error_filter, last_parser) {
            (None, _) => problems.push(format!(
                "{which} lacks the error filter `| __error__=\"\"`: a line Loki cannot parse must \
                 be dropped, neither counted nor turned into a query error"
            )),
            (Some(filter), Some(parser)) if filter < parser => problems.push(format!(
                "in {which} the error filter `| __error__=\"\"` comes before a parser; put it after \
                 the last one"
            )),
            _ => {}
        }
        for (k, stage) in stages.iter().enumerate() {
            let LogStage::Parser { name, params } = stage else {
                continue;
            };
            if matches!(name.as_str(), "json" | "logfmt") && extracts_everything(params) {
                problems.push(format!(
                    "{which}: `| {name}` without parameters turns every field (the timestamp \
                     included) into a label; extract only the fields the query uses, e.g. \
                     `| {name} event=\"event\"`"
                ));
            }
            let complete_line_first = stages[..k].iter().any(|s| {
                matches!(s, LogStage::LineFilter { op, pattern }
                    if op == "|~" && COMPLETE_LINE_PATTERNS.contains(&pattern.as_str()))
            });
            if name == "json" && !complete_line_first {
                problems.push(format!(
                    "{which}: `| json` must follow the complete-line filter |~ `\\}}$`: Loki stops \
                     reading a line once it has the fields it extracts, so a line cut short after \
                     them would count"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(op: &str, pattern: &str) -> LogStage {
        LogStage::LineFilter {
            op: op.into(),
            pattern: pattern.into(),
        }
    }

    #[test]
    fn pipelines_split_into_stages() {
        let expr = r#"sum(count_over_time({job="a", x=~"b|c"} |= "payment_failed" or "x" |~ `\}$` | json event="event", m="a|b" | __error__ = "" | event="payment_failed" | line_format "{{.x}} | y" [2m])) or vector(0)"#;
        assert_eq!(
            pipelines(expr),
            vec![vec![
                filter("|=", "payment_failed"),
                filter("|~", "\\}$"),
                LogStage::Parser {
                    name: "json".into(),
                    params: r#"event="event", m="a|b""#.into()
                },
                LogStage::ErrorFilter,
                LogStage::Other(r#"event="payment_failed""#.into()),
                LogStage::Other(r#"line_format "{{.x}} | y""#.into()),
            ]]
        );
        assert_eq!(pipelines(r#"{job="a"}"#), vec![Vec::<LogStage>::new()]);
        assert_eq!(
            pipelines(r#"{job="a"} != "debug" | logfmt --strict | json"#),
            vec![vec![
                filter("!=", "debug"),
                LogStage::Parser {
                    name: "logfmt".into(),
                    params: "--strict".into()
                },
                LogStage::Parser {
                    name: "json".into(),
                    params: String::new()
                },
            ]]
        );
        // A label filter on a label named like a parser is not a parser.
        assert_eq!(
            pipelines(r#"{a="b"} | json="x""#),
            vec![vec![LogStage::Other(r#"json="x""#.into())]]
        );
        // Two selectors, two pipelines.
        assert_eq!(
            pipelines(
                r#"count_over_time({a="b"} | __error__="" [1m]) / count_over_time({c="d"}[1m])"#
            )
            .len(),
            2
        );
    }

    #[test]
    fn the_lab_pipeline_has_no_problem() {
        for expr in [
            r#"sum(count_over_time({job="a"} |= "x" |~ `\}$` | json event="event" | __error__="" | event="x" [2m])) or vector(0)"#,
            r#"sum(count_over_time({job="a", level="error"} | __error__="" [2m]))"#,
            r#"{job="a"} | __error__="""#,
            r#"{job="a"} |= "x" |~ "}$" | json event | __error__="""#,
        ] {
            assert_eq!(pipeline_problems(expr), Vec::<String>::new(), "{expr}");
        }
    }

    #[test]
    fn each_rule_has_its_problem() {
        let problems = |expr: &str| pipeline_problems(expr).join("\n");
        assert!(problems(r#"sum(count_over_time({job="a"}[2m]))"#)
            .contains("the log pipeline lacks the error filter"));
        assert!(
            problems(r#"{job="a"} |~ `\}$` | __error__="" | json event="event""#)
                .contains("comes before a parser")
        );
        assert!(
            problems(r#"{job="a"} |= "x" |~ `\}$` | json | __error__="""#)
                .contains("`| json` without parameters turns every field")
        );
        assert!(problems(r#"{job="a"} | logfmt --strict | __error__="""#)
            .contains("`| logfmt` without parameters"));
        assert!(
            problems(r#"{job="a"} |= "x" | json event="event" | __error__="""#)
                .contains("must follow the complete-line filter")
        );
        assert!(problems(
            r#"count_over_time({a="b"} | __error__="" [1m]) or count_over_time({c="d"}[1m])"#
        )
        .contains("log pipeline 2 lacks"));
    }
}
