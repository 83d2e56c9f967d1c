//! One source of truth for what is shipped (issue 15): the Promtail configuration
//! (`promtail-config.nix`) and the Alloy configuration (`alloy-config.nix`, Alloy syntax text)
//! are generated with nix-instantiate, the Alloy text is parsed as Alloy reads it, and both
//! must describe the same streams: the same files, the same labels, the same parsing, pushed to
//! the same Loki. The Loki rules and dashboards then work unchanged with either shipper.

mod alloy_syntax;
mod common;

use std::collections::{BTreeMap, BTreeSet};

use alloy_syntax::{Block, Body, Value};
use common::eval_json;
use serde_json::Value as Json;

const LOG_DIR: &str = "/var/log/alertlab";
const LOKI: &str = "http://127.0.0.1:3100";

/// A stream as both shippers must see it: the file and its static labels.
type Stream = (String, BTreeMap<String, String>);

/// A processing stage, in a form both configurations translate to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Extracted name → JMESPath expression.
    Json(BTreeMap<String, String>),
    /// Label → extracted name.
    Labels(BTreeMap<String, String>),
    Timestamp {
        source: String,
        format: String,
    },
}

/// A component, its arguments, and its inner blocks with their arguments.
type Allowed = (&'static str, &'static [&'static str], &'static [InnerBlock]);
type InnerBlock = (&'static str, &'static [&'static str]);

/// The components and arguments the generator may use: the ones whose reference pages were read
/// (README, "Log pipeline"). Anything else is a failure here, not a surprise under Nix.
const ALLOWED: [Allowed; 3] = [
    (
        "loki.source.file",
        &["targets", "forward_to"],
        &[("file_match", &["enabled"])],
    ),
    (
        "loki.process",
        &["forward_to"],
        &[
            ("stage.json", &["expressions"]),
            ("stage.labels", &["values"]),
            ("stage.timestamp", &["source", "format"]),
        ],
    ),
    ("loki.write", &[], &[("endpoint", &["url"])]),
];

fn promtail() -> Json {
    eval_json(&format!(
        "{{ root }}: let l = import (root + \"/nixos-modules/lib\"); in l.promtailConfig {{ \
         inherit (l) services; logDir = \"{LOG_DIR}\"; lokiUrl = \"{LOKI}\"; \
         positionsFile = \"/var/lib/alertlab-promtail/positions.yaml\"; }}"
    ))
}

fn alloy_text() -> String {
    let text = eval_json(&format!(
        "{{ root }}: let l = import (root + \"/nixos-modules/lib\"); in l.alloyConfig {{ \
         inherit (l) services; logDir = \"{LOG_DIR}\"; lokiUrl = \"{LOKI}\"; }}"
    ));
    text.as_str().expect("alloyConfig is a string").to_owned()
}

fn string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => panic!("expected a string, found {other:?}"),
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    match value {
        Value::Object(object) => object.iter().map(|(k, v)| (k.clone(), string(v))).collect(),
        other => panic!("expected an object of strings, found {other:?}"),
    }
}

fn component<'a>(body: &'a Body, name: &str) -> &'a Block {
    let found: Vec<&Block> = body.blocks.iter().filter(|b| b.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name} component");
    found[0]
}

fn promtail_streams(config: &Json) -> Vec<(Stream, Vec<Stage>)> {
    let text = |v: &Json| v.as_str().unwrap().to_owned();
    config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scrape| {
            let statics = scrape["static_configs"].as_array().unwrap();
            assert_eq!(statics.len(), 1);
            assert_eq!(statics[0]["targets"], serde_json::json!(["localhost"]));
            let mut labels: BTreeMap<String, String> = statics[0]["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect();
            let path = labels.remove("__path__").expect("__path__");
            let stages = scrape["pipeline_stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|stage| {
                    let (kind, args) = stage.as_object().unwrap().iter().next().unwrap();
                    match kind.as_str() {
                        "json" => Stage::Json(
                            args["expressions"]
                                .as_object()
                                .unwrap()
                                .iter()
                                .map(|(k, v)| (k.clone(), text(v)))
                                .collect(),
                        ),
                        // `name: null` (or empty) reads the extracted value of the same name.
                        "labels" => Stage::Labels(
                            args.as_object()
                                .unwrap()
                                .iter()
                                .map(|(k, v)| {
                                    let from = v.as_str().filter(|s| !s.is_empty()).unwrap_or(k);
                                    (k.clone(), from.to_owned())
                                })
                                .collect(),
                        ),
                        "timestamp" => Stage::Timestamp {
                            source: text(&args["source"]),
                            format: text(&args["format"]),
                        },
                        other => panic!("a Promtail stage this test does not know: {other}"),
                    }
                })
                .collect();
            ((path, labels), stages)
        })
        .collect()
}

fn alloy_stages(process: &Block) -> Vec<Stage> {
    process
        .body
        .blocks
        .iter()
        .map(|stage| {
            let args = &stage.body.attributes;
            match stage.name.as_str() {
                "stage.json" => Stage::Json(string_map(&args["expressions"])),
                // An empty value reads the extracted value named like the label.
                "stage.labels" => Stage::Labels(
                    string_map(&args["values"])
                        .into_iter()
                        .map(|(k, v)| {
                            let from = if v.is_empty() { k.clone() } else { v };
                            (k, from)
                        })
                        .collect(),
                ),
                "stage.timestamp" => Stage::Timestamp {
                    source: string(&args["source"]),
                    format: string(&args["format"]),
                },
                other => panic!("an Alloy stage this test does not know: {other}"),
            }
        })
        .collect()
}

#[test]
fn the_alloy_config_uses_only_the_documented_components_and_arguments() {
    let body = alloy_syntax::parse(&alloy_text()).unwrap_or_else(|err| panic!("{err}"));
    assert!(
        body.attributes.is_empty(),
        "top-level attributes: {:?}",
        body.attributes
    );
    let names: BTreeSet<&str> = body.blocks.iter().map(|b| b.name.as_str()).collect();
    let allowed: BTreeSet<&str> = ALLOWED.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, allowed);
    for block in &body.blocks {
        let (_, attributes, blocks) = ALLOWED.iter().find(|(n, _, _)| *n == block.name).unwrap();
        assert!(block.label.is_some(), "{} has a label", block.name);
        for attribute in block.body.attributes.keys() {
            assert!(
                attributes.contains(&attribute.as_str()),
                "{}: {attribute}",
                block.name
            );
        }
        for inner in &block.body.blocks {
            let (_, inner_attributes) = blocks
                .iter()
                .find(|(n, _)| *n == inner.name)
                .unwrap_or_else(|| panic!("{}: block {}", block.name, inner.name));
            assert!(inner.label.is_none());
            assert!(inner.body.blocks.is_empty());
            for attribute in inner.body.attributes.keys() {
                assert!(
                    inner_attributes.contains(&attribute.as_str()),
                    "{} > {}: {attribute}",
                    block.name,
                    inner.name
                );
            }
        }
    }
}

#[test]
fn promtail_and_alloy_ship_the_same_streams_with_the_same_parsing_to_the_same_loki() {
    let body = alloy_syntax::parse(&alloy_text()).unwrap_or_else(|err| panic!("{err}"));
    let source = component(&body, "loki.source.file");
    let process = component(&body, "loki.process");
    let write = component(&body, "loki.write");

    // The pipeline is wired source → process → write.
    let reference = |component: &Block| {
        Value::List(vec![Value::Reference(format!(
            "{}.{}.receiver",
            component.name,
            component.label.as_deref().unwrap()
        ))])
    };
    assert_eq!(source.body.attributes["forward_to"], reference(process));
    assert_eq!(process.body.attributes["forward_to"], reference(write));
    // Files created after Alloy starts are picked up, as Promtail's sync does.
    let file_match = &source.body.blocks;
    assert_eq!(file_match.len(), 1);
    assert_eq!(file_match[0].body.attributes["enabled"], Value::Bool(true));

    let Value::List(targets) = &source.body.attributes["targets"] else {
        panic!("targets is a list");
    };
    let alloy_streams: BTreeSet<Stream> = targets
        .iter()
        .map(|target| {
            let mut labels = string_map(target);
            let path = labels.remove("__path__").expect("__path__");
            (path, labels)
        })
        .collect();
    assert_eq!(alloy_streams.len(), targets.len(), "no stream twice");
    let alloy_pipeline = alloy_stages(process);

    let promtail = promtail();
    let promtail_streams = promtail_streams(&promtail);
    let promtail_set: BTreeSet<Stream> = promtail_streams
        .iter()
        .map(|(stream, _)| stream.clone())
        .collect();
    assert_eq!(
        promtail_set, alloy_streams,
        "the same files with the same labels"
    );
    for (stream, stages) in &promtail_streams {
        assert_eq!(stages, &alloy_pipeline, "the same parsing for {}", stream.0);
    }
    let endpoints: Vec<&Block> = write.body.blocks.iter().collect();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        Value::String(promtail["clients"][0]["url"].as_str().unwrap().to_owned()),
        endpoints[0].body.attributes["url"]
    );

    // And those are the shop's files and labels, each service's own file, no glob.
    let want: BTreeSet<Stream> = ["api", "frontend", "payment", "inventory"]
        .into_iter()
        .map(|service| {
            (
                format!("{LOG_DIR}/{service}.log"),
                BTreeMap::from([
                    ("job".to_owned(), "alertlab".to_owned()),
                    ("service".to_owned(), service.to_owned()),
                ]),
            )
        })
        .collect();
    assert_eq!(alloy_streams, want);
    assert_eq!(
        alloy_pipeline,
        vec![
            Stage::Json(BTreeMap::from([
                ("event".to_owned(), "event".to_owned()),
                ("level".to_owned(), "level".to_owned()),
                ("timestamp".to_owned(), "timestamp".to_owned()),
            ])),
            Stage::Labels(BTreeMap::from([("level".to_owned(), "level".to_owned())])),
            Stage::Timestamp {
                source: "timestamp".to_owned(),
                format: "RFC3339Nano".to_owned()
            },
        ]
    );
}
