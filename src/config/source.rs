//! The configuration text as JSON, with where each member stands in it, and a collector of
//! problems that names each one's line and column.
//!
//! serde stops at the first mistake, and a typed `Deserialize` could only say where that one is.
//! A user who fixes a file by restarting the daemon five times deserves all five mistakes at once,
//! so the file is parsed to a JSON value first (a syntax error is the one thing that does stop
//! everything), its keys are located by one pass over the already-valid text, and the checks
//! walk the value, reporting every problem with the place of the key it concerns.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A 1-based line and column (in characters) in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One thing wrong with the file: where, what it concerns, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub position: Option<Position>,
    /// The path of keys to the member concerned (`["roles", "ops", "arn"]`); empty for the file.
    pub at: Vec<String>,
    pub message: String,
}

impl Problem {
    pub fn new(at: &[&str], message: impl Into<String>) -> Self {
        Problem {
            position: None,
            at: at.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }
}

/// `3:5: role "ops", field "arn": ...`: the place in the words the README uses for it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(position) = self.position {
            write!(f, "{position}: ")?;
        }
        match self.at.as_slice() {
            [] => {}
            [roles, alias] if roles == "roles" => write!(f, "role \"{alias}\": ")?,
            [roles, alias, rest @ ..] if roles == "roles" => {
                write!(f, "role \"{alias}\", field \"{}\": ", rest.join("."))?
            }
            path => write!(f, "field \"{}\": ", path.join("."))?,
        }
        f.write_str(&self.message)
    }
}

/// The parsed text and the positions of its keys.
pub struct Source {
    pub value: Value,
    keys: HashMap<Vec<String>, Position>,
    duplicates: Vec<Duplicate>,
}

/// A key given twice in one object: JSON parsers keep the last, which would hide a copy-paste
/// mistake (two roles under one alias).
struct Duplicate {
    at: Vec<String>,
    first: Position,
    again: Position,
}

impl Source {
    /// Parses `text`; a syntax error is returned as serde_json reports it.
    pub fn parse(text: &str) -> Result<Source, serde_json::Error> {
        let value = serde_json::from_str(text)?;
        let (keys, duplicates) = locate_keys(text);
        Ok(Source {
            value,
            keys,
            duplicates,
        })
    }

    /// Where the key at `at` stands, else the nearest enclosing key that has a place.
    fn position(&self, at: &[String]) -> Option<Position> {
        (1..=at.len())
            .rev()
            .find_map(|n| self.keys.get(&at[..n]).copied())
    }

    /// Starts collecting problems, with the duplicate keys already among them.
    pub fn checker(&self) -> Checker<'_> {
        let mut checker = Checker {
            source: self,
            problems: Vec::new(),
        };
        for d in &self.duplicates {
            let (name, parent) = d.at.split_last().expect("a duplicate has a key");
            let what = match parent {
                [roles] if roles == "roles" => format!("role \"{name}\" is defined twice"),
                _ => format!("\"{name}\" is given twice"),
            };
            checker.problems.push(Problem {
                position: Some(d.again),
                at: parent.to_vec(),
                message: format!("{what} (first at line {}); keep one", d.first.line),
            });
        }
        checker
    }
}

/// Collects the problems of one file, each placed.
pub struct Checker<'s> {
    source: &'s Source,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// Records a problem with the member at `at`.
    pub fn report(&mut self, at: &[&str], message: impl Into<String>) {
        self.push(Problem::new(at, message));
    }

    pub fn push(&mut self, mut problem: Problem) {
        self.locate(&mut problem);
        self.problems.push(problem);
    }

    /// Gives `problem` the place of its member in the file, if it has none yet.
    pub fn locate(&self, problem: &mut Problem) {
        if problem.position.is_none() {
            problem.position = self.source.position(&problem.at);
        }
    }

    /// `value` as an object with any keys (the roles, by alias).
    pub fn members<'v>(&mut self, at: &[&str], value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(members) => Some(members),
            _ => {
                self.report(at, format!("expected an object, found {}", kind(value)));
                None
            }
        }
    }

    /// `value` as an object whose keys are all among `fields`; every other key is a problem.
    pub fn object<'v>(
        &mut self,
        at: &[&str],
        value: &'v Value,
        fields: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let members = self.members(at, value)?;
        for key in members.keys().filter(|k| !fields.contains(&k.as_str())) {
            let mut path = at.to_vec();
            path.push(key);
            let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            self.report(
                &path,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            );
        }
        Some(members)
    }

    /// The member `name` of `object` as a `T`, if present and of the right type.
    pub fn field<T: DeserializeOwned>(
        &mut self,
        at: &[&str],
        object: &Map<String, Value>,
        name: &str,
    ) -> Option<T> {
        let value = object.get(name)?;
        let mut path = at.to_vec();
        path.push(name);
        self.typed(&path, value)
    }

    /// `value` as a `T`; serde's message (which quotes no position) says why not.
    pub fn typed<T: DeserializeOwned>(&mut self, at: &[&str], value: &Value) -> Option<T> {
        match T::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.report(at, e.to_string());
                None
            }
        }
    }

    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, in the order they stand in the file.
    pub fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by_key(|p| p.position.map(|p| (p.line, p.column)));
        self.problems
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One pass over valid JSON text: the position of every object key, by its path, and the keys
/// given twice in one object.
fn locate_keys(text: &str) -> (HashMap<Vec<String>, Position>, Vec<Duplicate>) {
    enum Frame {
        /// The key of the member being read, once read.
        Object(Option<String>),
        Array(usize),
    }
    fn path(stack: &[Frame], key: &str) -> Vec<String> {
        let mut path: Vec<String> = stack
            .iter()
            .filter_map(|frame| match frame {
                Frame::Object(key) => key.clone(),
                Frame::Array(index) => Some(index.to_string()),
            })
            .collect();
        path.push(key.to_owned());
        path
    }
    let mut keys = HashMap::new();
    let mut duplicates = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let (mut line, mut column) = (1, 1);
    let mut chars = text.char_indices();
    while let Some((start, c)) = chars.next() {
        let here = Position { line, column };
        column += 1;
        match c {
            '\n' => (line, column) = (line + 1, 1),
            '{' => {
                stack.push(Frame::Object(None));
                expecting_key = true;
            }
            '[' => {
                stack.push(Frame::Array(0));
                expecting_key = false;
            }
            '}' | ']' => {
                stack.pop();
            }
            ':' => expecting_key = false,
            ',' => match stack.last_mut() {
                Some(Frame::Object(key)) => {
                    *key = None;
                    expecting_key = true;
                }
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            '"' => {
                // Strings hold no raw newline in valid JSON; an escape skips the next character.
                let mut end = start;
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    column += 1;
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = i;
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                if expecting_key {
                    let key: String = serde_json::from_str(&text[start..=end]).unwrap_or_default();
                    let at = path(&stack[..stack.len().saturating_sub(1)], &key);
                    match keys.get(&at) {
                        Some(&first) => duplicates.push(Duplicate {
                            at,
                            first,
                            again: here,
                        }),
                        None => {
                            keys.insert(at, here);
                        }
                    }
                    if let Some(Frame::Object(current)) = stack.last_mut() {
                        *current = Some(key);
                    }
                }
            }
            _ => {}
        }
    }
    (keys, duplicates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_key_is_located_by_its_path() {
        let text = "{\n  \"roles\": {\n    \"a\": {\"arn\": \"x\"},\n    \"b\": \"y\"\n  },\n  \"port\": 1\n}";
        let source = Source::parse(text).unwrap();
        let pos = |p: &[&str]| source.keys[&at(p)];
        assert_eq!(pos(&["roles"]), Position { line: 2, column: 3 });
        assert_eq!(pos(&["roles", "a"]), Position { line: 3, column: 5 });
        assert_eq!(
            pos(&["roles", "a", "arn"]),
            Position {
                line: 3,
                column: 11
            }
        );
        assert_eq!(pos(&["roles", "b"]), Position { line: 4, column: 5 });
        assert_eq!(pos(&["port"]), Position { line: 6, column: 3 });
    }

    #[test]
    fn strings_with_quotes_braces_and_escapes_do_not_confuse_the_scan() {
        let text = r#"{"a\"{": ["}", {"k": "v\\"}], "b\u0041": 1}"#;
        let source = Source::parse(text).unwrap();
        assert!(source.keys.contains_key(&at(&["a\"{"])));
        assert!(source.keys.contains_key(&at(&["a\"{", "1", "k"])));
        assert!(source.keys.contains_key(&at(&["bA"])));
    }

    #[test]
    fn a_key_given_twice_is_a_problem_at_its_second_place() {
        let source = Source::parse("{\"roles\": {\"a\": 1,\n \"a\": 2}}").unwrap();
        let problems = source.checker().into_problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "2:2: field \"roles\": role \"a\" is defined twice (first at line 1); keep one"
        );
    }

    #[test]
    fn unknown_keys_are_each_reported_where_they_stand() {
        let source = Source::parse("{\"x\": 1,\n \"port\": 2,\n \"y\": 3}").unwrap();
        let mut checker = source.checker();
        checker.object(&[], &source.value, &["port"]);
        let problems: Vec<String> = checker
            .into_problems()
            .iter()
            .map(Problem::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "1:2: field \"x\": unknown field `x`, expected one of `port`",
                "3:2: field \"y\": unknown field `y`, expected one of `port`",
            ]
        );
    }

    #[test]
    fn a_problem_without_a_key_of_its_own_takes_its_parents_place() {
        let source = Source::parse("{\n \"roles\": {}}").unwrap();
        let mut checker = source.checker();
        checker.report(&["roles", "missing"], "m");
        checker.report(&["absent"], "n");
        let problems = checker.into_problems();
        assert_eq!(problems[0].to_string(), "field \"absent\": n");
        assert_eq!(problems[1].to_string(), "2:2: role \"missing\": m");
    }
}
