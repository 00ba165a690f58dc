//! A small interpreter of the few shell forms the documentation's examples use, so that the
//! examples run as tests without a shell or jq: `weft ARGS` (exit 0, or the `(exit N)` its
//! comment names), `NAME=$(weft ARGS | jq -r FILTER)` with a filter of `.field` and `[index]`
//! steps, `weft node run … &` (started in the background, on a free port that replaces the
//! example's), and `curl -s URL`. Anything else fails the test, so a new form in an example must
//! be taught here first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::node::{agent, wait_until};

/// The first ```sh block after the line `heading`.
pub fn block(readme: &str, heading: &str) -> Vec<String> {
    let after = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no heading {heading:?}"))
        .1;
    let start = after.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = after[start..].find("```").expect("the block ends") + start;
    after[start..end].lines().map(str::to_string).collect()
}

/// The line without its comment, and the comment.
fn comment(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match c {
            '"' | '\'' => quoted = !quoted,
            '#' if !quoted && previous.is_whitespace() => {
                return (line[..at].trim(), line[at + 1..].trim());
            }
            _ => {}
        }
        previous = c;
    }
    (line.trim(), "")
}

/// Splits on spaces, keeping "double" and 'single' quoted words whole.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

/// `.a.b[0]` applied to `value`.
fn jq(value: &Value, filter: &str) -> String {
    let mut at = value;
    let mut rest = filter
        .strip_prefix('.')
        .expect("a jq filter starting with .");
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner.split_once(']').expect("]");
            at = &at[index.parse::<usize>().expect("an index")];
            rest = after.strip_prefix('.').unwrap_or(after);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            at = &at[&rest[..end]];
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    match at {
        Value::String(text) => text.clone(),
        Value::Null => panic!("jq {filter}: null in {value}"),
        other => other.to_string(),
    }
}

/// The state examples share as they run in order: their directory, the variables they set and
/// the node they started (killed when the session ends, however the test ends).
pub struct Session {
    dir: PathBuf,
    vars: HashMap<String, String>,
    /// The example's node address, and the one the node really got.
    url: Option<(String, String)>,
    node: Option<Child>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut node) = self.node.take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

impl Session {
    /// A session whose commands run in `dir`, with `./.weft` as the default home.
    pub fn new(dir: &std::path::Path) -> Session {
        Session {
            dir: dir.to_path_buf(),
            vars: HashMap::new(),
            url: None,
            node: None,
        }
    }

    /// The node an example started in the background, if any (the session no longer owns it).
    pub fn take_node(&mut self) -> Option<Child> {
        self.node.take()
    }

    fn expand(&self, text: &str) -> String {
        let mut text = text.to_string();
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort_by_key(|name| std::cmp::Reverse(name.len()));
        for name in names {
            text = text.replace(&format!("${{{name}}}"), &self.vars[name]);
            text = text.replace(&format!("${name}"), &self.vars[name]);
        }
        if let Some((written, real)) = &self.url {
            text = text.replace(written, real);
        }
        text
    }

    fn weft(&self, args: &[String]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command
            .current_dir(&self.dir)
            .env_remove("WEFT_HOME")
            .env_remove("WEFT_NODE")
            .env_remove("WEFT_CA")
            .args(args);
        command
    }

    /// Runs one line of an example.
    pub fn run(&mut self, line: &str) {
        let (code, note) = comment(line);
        if code.is_empty() {
            return;
        }
        let code = self.expand(code);
        let expected = note
            .split_once("(exit ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map_or(0, |(number, _)| {
                number.parse::<i32>().expect("an exit code")
            });
        if let Some((name, rest)) = code.split_once("=$(") {
            let inner = rest.strip_suffix(')').expect("$( … )");
            let (command, filter) = inner.split_once(" | jq -r ").expect("… | jq -r FILTER");
            let words = words(command);
            assert_eq!(words[0], "weft", "{line}");
            let output = self.weft(&words[1..]).output().expect("weft runs");
            assert!(output.status.success(), "{line}: {output:?}");
            let value: Value = serde_json::from_slice(&output.stdout).expect("JSON");
            let filter = words_one(filter);
            self.vars.insert(name.to_string(), jq(&value, &filter));
        } else if let Some(command) = code.strip_suffix('&') {
            let mut words = words(command);
            assert_eq!(&words[..3], ["weft", "node", "run"], "{line}");
            let at = words.iter().position(|w| w == "--api").expect("--api");
            let written = format!("http://{}", words[at + 1]);
            words[at + 1] = "127.0.0.1:0".into();
            let addr = self.dir.join(".weft").join("node.addr");
            let child = self
                .weft(&words[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("node starts");
            self.node = Some(child);
            let real = wait_until(60, || {
                std::fs::read_to_string(&addr)
                    .ok()
                    .and_then(|text| text.lines().next().map(str::to_string))
                    .filter(|line| !line.is_empty())
                    .ok_or_else(|| "node.addr not written yet".to_string())
            });
            self.url = Some((written, format!("http://{real}")));
        } else if let Some(url) = code.strip_prefix("curl -s ") {
            let answer = agent().get(url.trim()).call().expect("answers");
            assert_eq!(answer.status().as_u16(), 200, "{line}");
        } else {
            let words = words(&code);
            assert_eq!(words[0], "weft", "a line the test cannot run: {line}");
            let output = self.weft(&words[1..]).output().expect("weft runs");
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{line}\nstdout {}\nstderr {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A filter given as one shell word (possibly quoted).
fn words_one(text: &str) -> String {
    let mut all = words(text);
    assert_eq!(all.len(), 1, "one jq filter: {text}");
    all.remove(0)
}
