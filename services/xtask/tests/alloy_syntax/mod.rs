//! A parser for the subset of the Alloy configuration syntax that nixos-modules/lib/alloy-config.nix
//! emits: blocks (`name "label" { ... }`), attributes (`name = value`), and values that are
//! strings, booleans, references (`loki.process.shop.receiver`), lists and objects. As in
//! Alloy, a list or object whose closing bracket is on another line than its last element needs a
//! comma after that element. Anything else is an error, so the test reads what Alloy would.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Bool(bool),
    Reference(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    pub attributes: BTreeMap<String, Value>,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub name: String,
    pub label: Option<String>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    String(String),
    Punct(char),
}

/// A token and the line it starts on.
type Located = (Token, usize);

fn tokenize(text: &str) -> Result<Vec<Located>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '/' => {
                chars.next();
                if chars.next() != Some('/') {
                    return Err(format!("line {line}: `/` that does not start a comment"));
                }
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '{' | '}' | '[' | ']' | '=' | ',' => {
                tokens.push((Token::Punct(c), line));
                chars.next();
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => {
                            return Err(format!("line {line}: unterminated string"))
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('"') => value.push('"'),
                            Some('\\') => value.push('\\'),
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            other => {
                                return Err(format!(
                                "line {line}: escape `\\{other:?}` not emitted by the generator"
                            ))
                            }
                        },
                        Some(c) => value.push(c),
                    }
                }
                tokens.push((Token::String(value), line));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut ident = String::new();
                while chars
                    .peek()
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    ident.push(chars.next().unwrap());
                }
                if ident.ends_with('.') || ident.contains("..") {
                    return Err(format!("line {line}: malformed name `{ident}`"));
                }
                tokens.push((Token::Ident(ident), line));
            }
            other => return Err(format!("line {line}: unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Located>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(0, |(_, line)| *line)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.at)
            .map(|(token, _)| token.clone())
            .ok_or("unexpected end of the configuration")?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        let line = self.line();
        match self.next()? {
            Token::Punct(p) if p == c => Ok(()),
            other => Err(format!("line {line}: expected `{c}`, found {other:?}")),
        }
    }

    /// Attributes and blocks until `}` (or the end, at the top level).
    fn body(&mut self, top: bool) -> Result<Body, String> {
        let mut body = Body::default();
        loop {
            match self.peek() {
                None if top => return Ok(body),
                Some(Token::Punct('}')) if !top => return Ok(body),
                _ => {}
            }
            let line = self.line();
            let Token::Ident(name) = self.next()? else {
                return Err(format!("line {line}: expected an attribute or a block"));
            };
            match self.peek() {
                Some(Token::Punct('=')) => {
                    self.next()?;
                    let value = self.value()?;
                    if body.attributes.insert(name.clone(), value).is_some() {
                        return Err(format!("line {line}: attribute `{name}` set twice"));
                    }
                }
                _ => {
                    let label = match self.peek() {
                        Some(Token::String(_)) => match self.next()? {
                            Token::String(label) => Some(label),
                            _ => unreachable!(),
                        },
                        _ => None,
                    };
                    self.expect('{')?;
                    let inner = self.body(false)?;
                    self.expect('}')?;
                    body.blocks.push(Block {
                        name,
                        label,
                        body: inner,
                    });
                }
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let line = self.line();
        match self.next()? {
            Token::String(s) => Ok(Value::String(s)),
            Token::Ident(i) if i == "true" || i == "false" => Ok(Value::Bool(i == "true")),
            Token::Ident(i) => Ok(Value::Reference(i)),
            Token::Punct('[') => {
                let mut items = Vec::new();
                self.elements(']', |parser| {
                    items.push(parser.value()?);
                    Ok(())
                })?;
                Ok(Value::List(items))
            }
            Token::Punct('{') => {
                let mut object = BTreeMap::new();
                self.elements('}', |parser| {
                    let line = parser.line();
                    let key = match parser.next()? {
                        Token::Ident(key) | Token::String(key) => key,
                        other => {
                            return Err(format!(
                                "line {line}: object key expected, found {other:?}"
                            ))
                        }
                    };
                    parser.expect('=')?;
                    let value = parser.value()?;
                    if object.insert(key.clone(), value).is_some() {
                        return Err(format!("line {line}: key `{key}` twice in an object"));
                    }
                    Ok(())
                })?;
                Ok(Value::Object(object))
            }
            other => Err(format!("line {line}: expected a value, found {other:?}")),
        }
    }

    /// Comma-separated elements up to `close`, enforcing Alloy's trailing comma rule.
    fn elements(
        &mut self,
        close: char,
        mut element: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            if self.peek() == Some(&Token::Punct(close)) {
                self.next()?;
                return Ok(());
            }
            element(self)?;
            let last_line = self.tokens[self.at - 1].1;
            match self.peek() {
                Some(Token::Punct(',')) => {
                    self.next()?;
                }
                Some(Token::Punct(c)) if *c == close => {
                    if self.line() != last_line {
                        return Err(format!(
                            "line {last_line}: a comma must follow the last element when `{close}` is on another line"
                        ));
                    }
                }
                _ => return Err(format!("line {}: expected `,` or `{close}`", self.line())),
            }
        }
    }
}

/// Parses a whole configuration file.
pub fn parse(text: &str) -> Result<Body, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    parser.body(true)
}

#[test]
fn the_parser_reads_blocks_attributes_and_values() {
    let body = parse(
        "// c\nloki.write \"x\" {\n  endpoint {\n    url = \"http://a\"\n  }\n  external_labels = {a = \"1\", \"b.c\" = \"2\"}\n  list = [\n    x.y,\n    true,\n  ]\n}\n",
    )
    .unwrap();
    assert_eq!(body.blocks.len(), 1);
    let write = &body.blocks[0];
    assert_eq!(write.name, "loki.write");
    assert_eq!(write.label.as_deref(), Some("x"));
    assert_eq!(
        write.body.blocks[0].body.attributes["url"],
        Value::String("http://a".into())
    );
    assert_eq!(
        write.body.attributes["list"],
        Value::List(vec![Value::Reference("x.y".into()), Value::Bool(true)])
    );
}

#[test]
fn the_parser_refuses_what_alloy_refuses() {
    for (text, says) in [
        ("a {\n  b = \"1\"\n", "unexpected end"),
        ("a = [\n  \"x\"\n]\n", "a comma must follow"),
        ("a = {k = \"1\"\n}\n", "a comma must follow"),
        ("a = \"1\"\na = \"2\"\n", "set twice"),
        ("a = \"unterminated\n", "unterminated string"),
        ("a = {k = \"1\", k = \"2\"}\n", "twice in an object"),
        ("a = 5\n", "unexpected `5`"),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.contains(says), "{text:?}: {err}");
    }
}
