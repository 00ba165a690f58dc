//! A small interpreter of the few shell forms the documentation's examples use, so that the
//! examples of README.md and docs/ run as tests, in order, without a shell or jq:
//!
//! - `weft ARGS`: exit 0, or the `(exit N)` its comment names;
//! - `NAME=$(weft ARGS | jq -r FILTER)`, a filter of `.field` and `[index]` steps; `$NAME` and
//!   `${NAME}` stand for the value in the lines after;
//! - `weft [--home DIR] node run … &`: started in the background on a free loopback port (and
//!   TCP ingest, given `--tcp`, on another); the `--api` address the example gives, if any,
//!   stands for the real one in the lines after (`http://` or, if the node serves TLS,
//!   `https://`);
//! - `kill $!`: SIGTERM to the node started last; it must exit 0 (within a minute);
//! - `printf 'TEXT' | weft ARGS` and `printf 'TEXT' > FILE`: TEXT single-quoted, with `\n` as
//!   its only escape, to the command's standard input or into the file;
//! - `ls DIR …`: each DIR must be a directory (nothing is printed);
//! - `curl -s URL [-H 'NAME: VALUE'] [-d BODY]`: GET, or POST of the body; the answer must be
//!   200 and, when it is JSON, carry no GraphQL `errors`;
//! - `mkdir [-p] DIR`;
//! - `#` starts a comment, and a line ending in `\` goes on on the next.
//!
//! Every `weft` command must end within three minutes. Anything else fails the test with the
//! document and line, so a new form must be taught here first. Examples name relative paths only (they run in the session's temporary directory) and
//! loopback addresses only (127.0.0.0/8). Every node an example starts, and every cluster it
//! makes with `weft cluster up`, is stopped when the session ends, however the test ends.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::node::{agent, wait_until};

/// A fenced code block of a Markdown document.
pub struct Fence {
    /// The words after the opening fence: `["sh"]`, `["sh", "dev"]`, `["toml"]`, …
    pub info: Vec<String>,
    /// The line number (from 1) of the opening fence.
    pub line: usize,
    /// The block's lines with their line numbers, without the fence's indentation.
    pub lines: Vec<(usize, String)>,
}

/// The fence character and length a line opens or closes a fence with, and the rest of it.
fn fence_marker(line: &str) -> Option<(char, usize, &str)> {
    let first = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let count = line.chars().take_while(|c| *c == first).count();
    (count >= 3).then(|| (first, count, line[count..].trim()))
}

/// Every fenced code block of a Markdown document (list items' indented fences included).
pub fn fences(text: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    // The open fence: its character, length, indentation, and the block so far.
    let mut open: Option<(char, usize, usize, Fence)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        match open.take() {
            Some((c, count, _, fence))
                if fence_marker(trimmed).is_some_and(|(d, length, rest)| {
                    d == c && length >= count && rest.is_empty()
                }) =>
            {
                out.push(fence);
            }
            Some((c, count, fence_indent, mut fence)) => {
                let strip = indent.min(fence_indent);
                fence.lines.push((number, raw[strip..].to_string()));
                open = Some((c, count, fence_indent, fence));
            }
            None => {
                if let Some((c, count, info)) = fence_marker(trimmed) {
                    let fence = Fence {
                        info: info.split_whitespace().map(str::to_string).collect(),
                        line: number,
                        lines: Vec::new(),
                    };
                    open = Some((c, count, indent, fence));
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    out
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

/// The dotted IPv4 addresses in `text`.
fn ipv4_addresses(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|part| part.trim_matches('.'))
        .filter(|part| {
            let octets: Vec<&str> = part.split('.').collect();
            octets.len() == 4 && octets.iter().all(|octet| octet.parse::<u8>().is_ok())
        })
        .collect()
}

/// `text` with every `from` (an address `HOST:PORT`) that no digit follows replaced by `to`, so
/// that `127.0.0.1:7460` does not match the start of `127.0.0.1:74601`.
fn replace_address(text: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        out.push_str(&rest[..at]);
        out.push_str(if after.starts_with(|c: char| c.is_ascii_digit()) {
            from
        } else {
            to
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The bytes `printf 'TEXT'` writes, for a TEXT whose only escape is `\n`.
fn printf_text(text: &str, at: &str, line: &str) -> Vec<u8> {
    assert!(
        !text.contains('%'),
        "{at}: printf with a % is not a form the test knows: {line}"
    );
    let bytes = text.replace("\\n", "\n");
    assert!(
        !bytes.contains('\\'),
        "{at}: printf escapes other than \\n are not forms the test knows: {line}"
    );
    bytes.into_bytes()
}

/// The last `count` lines of the file at `path`, for a failed test's output.
fn tail(path: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// A node an example started in the background.
struct Background {
    child: Child,
    home: PathBuf,
    url: String,
    log: PathBuf,
}

/// Examples run in order in one session: one temporary directory (the commands' working
/// directory, whose `./.weft` is the default home), the variables they set, the nodes and
/// clusters they started. Dropping it stops them all.
pub struct Session {
    dir: PathBuf,
    /// Where the line being run is, `DOCUMENT:LINE`, for messages.
    at: String,
    vars: HashMap<String, String>,
    /// Each address (`HOST:PORT`) an example gave a node's API, and the one the node really got.
    urls: Vec<(String, String)>,
    nodes: Vec<Background>,
    /// The directories of the clusters examples brought up.
    clusters: Vec<PathBuf>,
    /// The body of the last `curl` answer.
    answer: String,
    /// Dropped last, after the processes that use it are stopped.
    _temp: tempfile::TempDir,
}

impl Session {
    /// A session in a new temporary directory.
    pub fn new() -> Session {
        let temp = tempfile::tempdir().expect("tempdir");
        Session {
            dir: temp.path().to_path_buf(),
            at: String::new(),
            vars: HashMap::new(),
            urls: Vec::new(),
            nodes: Vec::new(),
            clusters: Vec::new(),
            answer: String::new(),
            _temp: temp,
        }
    }

    /// The directory the examples run in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value an example gave the variable `name`.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no example set ${name}"))
    }

    /// The API URL of the node an example started on the home `home` (as the example wrote it).
    pub fn node_url(&self, home: &str) -> &str {
        let home = self.dir.join(home);
        &self
            .nodes
            .iter()
            .find(|node| node.home == home)
            .unwrap_or_else(|| panic!("no example started a node on {}", home.display()))
            .url
    }

    /// The body of the last `curl` answer.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// Runs the lines of `fence`, from `document`, in order.
    pub fn run_block(&mut self, document: &str, fence: &Fence) {
        self.run_block_checking(document, fence, |_, _| {});
    }

    /// Runs the lines of `fence`, from `document`, in order, calling `before` with the session
    /// and each line (continued lines joined) before it runs: to check there what the lines
    /// before promised.
    pub fn run_block_checking(
        &mut self,
        document: &str,
        fence: &Fence,
        mut before: impl FnMut(&Session, &str),
    ) {
        let mut continued: Option<(usize, String)> = None;
        for (number, line) in &fence.lines {
            let (first, text) = match continued.take() {
                Some((first, before)) => (first, format!("{before} {}", line.trim_start())),
                None => (*number, line.clone()),
            };
            if let Some(before) = text.strip_suffix('\\') {
                continued = Some((first, before.trim_end().to_string()));
                continue;
            }
            self.at = format!("{document}:{first}");
            before(self, &text);
            self.run(&text);
        }
        assert!(
            continued.is_none(),
            "{document}:{}: the block ends in a continued line",
            fence.line
        );
    }

    /// SIGTERM to every node the examples started; their exit statuses once they stopped.
    pub fn stop_nodes(&mut self) -> Vec<ExitStatus> {
        for node in &self.nodes {
            let pid = rustix::process::Pid::from_raw(node.child.id() as i32).expect("pid");
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        }
        let statuses = self
            .nodes
            .iter_mut()
            .map(|node| {
                wait_until(60, || {
                    node.child.try_wait().expect("wait").ok_or_else(|| {
                        format!("the node on {} is still running", node.home.display())
                    })
                })
            })
            .collect();
        self.nodes.clear();
        statuses
    }

    fn expand(&self, text: &str) -> String {
        let mut text = text.to_string();
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort_by_key(|name| std::cmp::Reverse(name.len()));
        for name in names {
            text = text.replace(&format!("${{{name}}}"), &self.vars[name]);
            text = text.replace(&format!("${name}"), &self.vars[name]);
        }
        // In the order the nodes started: a node started again on the address an example gave
        // before gets it through the address of the one before.
        for (written, real) in &self.urls {
            text = replace_address(&text, written, real);
        }
        text
    }

    /// Refuses what an example must not do in a test: use a variable nothing set, name a path
    /// outside the test's directory or an address off this machine.
    fn check(&self, code: &str, line: &str) {
        let at = &self.at;
        let unset = code.match_indices('$').any(|(index, _)| {
            code[index + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '{' || c == '_')
        });
        assert!(!unset, "{at}: a variable no line before set: {line}");
        for word in words(code) {
            let outside = word.starts_with('/')
                || word.starts_with('~')
                || word.split('/').any(|step| step == "..");
            assert!(
                !outside,
                "{at}: {word} is outside the example's directory (use a relative path): {line}"
            );
        }
        for address in ipv4_addresses(code) {
            assert!(
                address.starts_with("127."),
                "{at}: {address} is not a loopback address (127.0.0.0/8): {line}"
            );
        }
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

    /// Runs `weft` with `args` to its end; a cluster it brings up is stopped with the session.
    fn weft_output(&mut self, args: &[String]) -> Output {
        self.weft_output_with(args, None)
    }

    /// Runs `weft` with `args`, and `input` as its standard input if given, to its end, within
    /// three minutes (it is killed, and the test fails, if not).
    fn weft_output_with(&mut self, args: &[String], input: Option<Vec<u8>>) -> Output {
        if let Some(up) = args.windows(2).position(|pair| pair == ["cluster", "up"]) {
            let dir = args[up..]
                .windows(2)
                .find(|pair| pair[0] == "--dir")
                .map(|pair| pair[1].clone())
                .unwrap_or_else(|| panic!("{}: cluster up without --dir", self.at));
            self.clusters.push(self.dir.join(dir));
        }
        let mut child = self
            .weft(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft runs");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            if let Some(input) = input {
                // Closed when dropped: the command reads to the end of its input. One that
                // stops reading early fails on its own, with its exit code.
                let mut stdin = child.stdin.take().expect("piped");
                let _ = stdin.write_all(&input);
            }
            let _ = sender.send(child.wait_with_output());
        });
        // Longer than `weft cluster up`'s own --timeout (120 s), so that it stops its nodes.
        match receiver.recv_timeout(Duration::from_secs(180)) {
            Ok(output) => output.expect("weft runs"),
            Err(_) => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                let _ = waiter.join();
                panic!(
                    "{}: weft {} did not end within 180 s",
                    self.at,
                    args.join(" ")
                );
            }
        }
    }

    /// Runs one line of an example.
    pub fn run(&mut self, line: &str) {
        let (code, note) = comment(line);
        if code.is_empty() {
            return;
        }
        let code = self.expand(code);
        self.check(&code, line);
        let at = self.at.clone();
        let expected = note
            .split_once("(exit ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map_or(0, |(number, _)| {
                number.parse::<i32>().expect("an exit code")
            });
        if let Some((name, rest)) = code.split_once("=$(") {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{at}: a line the test cannot run: {line}"
            );
            let inner = rest
                .strip_suffix(')')
                .unwrap_or_else(|| panic!("{at}: $( … ) not closed: {line}"));
            let (command, filter) = inner
                .split_once(" | jq -r ")
                .unwrap_or_else(|| panic!("{at}: not NAME=$(weft … | jq -r FILTER): {line}"));
            let words = words(command);
            assert_eq!(words[0], "weft", "{at}: a line the test cannot run: {line}");
            let output = self.weft_output(&words[1..]);
            assert!(output.status.success(), "{at}: {line}: {output:?}");
            let value: Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|error| panic!("{at}: {line}: not JSON ({error}): {output:?}"));
            let filter = words_one(filter);
            self.vars.insert(name.to_string(), jq(&value, &filter));
        } else if let Some(command) = code.strip_suffix('&') {
            self.background(command, line);
        } else if code == "kill $!" {
            self.kill_last(line);
        } else {
            let words = words(&code);
            match words[0].as_str() {
                "printf" => match &words[1..] {
                    [text, pipe, weft, args @ ..] if pipe == "|" && weft == "weft" => {
                        let input = printf_text(text, &at, line);
                        let output = self.weft_output_with(args, Some(input));
                        assert_eq!(
                            output.status.code(),
                            Some(expected),
                            "{at}: {line}\nstdout {}\nstderr {}",
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        );
                    }
                    [text, into, file] if into == ">" => {
                        std::fs::write(self.dir.join(file), printf_text(text, &at, line))
                            .unwrap_or_else(|error| panic!("{at}: {line}: {error}"));
                    }
                    _ => panic!("{at}: a line the test cannot run: {line}"),
                },
                "ls" => {
                    assert!(words.len() > 1, "{at}: ls without a directory: {line}");
                    for dir in &words[1..] {
                        assert!(
                            !dir.starts_with('-') && self.dir.join(dir).is_dir(),
                            "{at}: {dir} is not a directory: {line}"
                        );
                    }
                }
                "weft" => {
                    let output = self.weft_output(&words[1..]);
                    assert_eq!(
                        output.status.code(),
                        Some(expected),
                        "{at}: {line}\nstdout {}\nstderr {}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                "curl" => self.curl(&words[1..], line),
                "mkdir" => match &words[1..] {
                    [flag, dir] if flag == "-p" => {
                        std::fs::create_dir_all(self.dir.join(dir)).expect("mkdir -p")
                    }
                    [dir] => std::fs::create_dir(self.dir.join(dir))
                        .unwrap_or_else(|error| panic!("{at}: {line}: {error}")),
                    _ => panic!("{at}: a line the test cannot run: {line}"),
                },
                _ => panic!("{at}: a line the test cannot run: {line}"),
            }
        }
    }

    /// `kill $!`: stops the node started last with SIGTERM; it must exit 0 within a minute.
    fn kill_last(&mut self, line: &str) {
        let at = self.at.clone();
        // Left in `nodes` until it exited, so that the session kills it if it does not.
        let node = self
            .nodes
            .last_mut()
            .unwrap_or_else(|| panic!("{at}: no node runs in the background: {line}"));
        let pid = rustix::process::Pid::from_raw(node.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let status = wait_until(60, || {
            node.child.try_wait().expect("wait").ok_or_else(|| {
                format!("{at}: the node on {} is still running", node.home.display())
            })
        });
        assert!(
            status.success(),
            "{at}: {line}: the node stopped with {status}:\n{}",
            tail(&node.log, 40)
        );
        self.nodes.pop();
    }

    /// `weft [--home DIR] node run … &`: starts the node on a free port, waits until it listens.
    fn background(&mut self, command: &str, line: &str) {
        let at = self.at.clone();
        let mut words = words(command);
        let (home, run) = match words.get(1).map(String::as_str) {
            Some("--home") => (words[2].clone(), 3),
            _ => (".weft".to_string(), 1),
        };
        assert!(
            words[0] == "weft"
                && words
                    .get(run..run + 2)
                    .is_some_and(|pair| pair == ["node", "run"]),
            "{at}: only `weft [--home DIR] node run … &` runs in the background: {line}"
        );
        let written = match words.iter().position(|word| word == "--api") {
            Some(api) => {
                let written = words[api + 1].clone();
                words[api + 1] = "127.0.0.1:0".into();
                Some(written)
            }
            None => {
                words.extend(["--api".into(), "127.0.0.1:0".into()]);
                None
            }
        };
        // Commands find TCP ingest in node.addr: its address is not written in the lines after.
        if let Some(tcp) = words.iter().position(|word| word == "--tcp") {
            words[tcp + 1] = "127.0.0.1:0".into();
        }
        let home = self.dir.join(home);
        let addr = home.join("node.addr");
        let _ = std::fs::remove_file(&addr);
        let log = self
            .dir
            .join(format!("background-{}.log", self.nodes.len()));
        let child = self
            .weft(&words[1..])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("node starts");
        self.nodes.push(Background {
            child,
            home,
            url: String::new(),
            log,
        });
        let node = self.nodes.last_mut().expect("just pushed");
        let listening = wait_until(60, || {
            if let Some(status) = node.child.try_wait().expect("wait") {
                panic!("{at}: {line}: the node exited ({status}) before it listened");
            }
            std::fs::read_to_string(&addr)
                .ok()
                .filter(|text| text.ends_with('\n'))
                .and_then(|text| {
                    let tls = text.lines().any(|line| line == "tls");
                    text.lines().next().map(|api| (api.to_string(), tls))
                })
                .ok_or_else(|| format!("{at}: {line}: the node does not listen yet"))
        });
        let (listening, tls) = listening;
        let scheme = if tls { "https" } else { "http" };
        node.url = format!("{scheme}://{listening}");
        if let Some(written) = written {
            self.urls.push((written, listening));
        }
    }

    /// `curl -s URL [-H 'NAME: VALUE'] [-d BODY]`.
    fn curl(&mut self, words: &[String], line: &str) {
        let at = &self.at;
        let mut url = None;
        let mut headers = Vec::new();
        let mut body = None;
        let mut rest = words.iter();
        while let Some(word) = rest.next() {
            match word.as_str() {
                "-s" => {}
                "-H" => {
                    let header = rest.next().expect("-H HEADER");
                    let (name, value) = header
                        .split_once(':')
                        .unwrap_or_else(|| panic!("{at}: a header is NAME: VALUE: {line}"));
                    headers.push((name.trim().to_string(), value.trim().to_string()));
                }
                "-d" => body = Some(rest.next().expect("-d BODY")),
                option if option.starts_with('-') => {
                    panic!("{at}: curl {option} is not a form the test knows: {line}")
                }
                address => {
                    assert!(url.is_none(), "{at}: one URL: {line}");
                    url = Some(address);
                }
            }
        }
        let url = url.unwrap_or_else(|| panic!("{at}: curl without a URL: {line}"));
        let answer = match body {
            None => {
                let mut request = agent().get(url);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                request.call()
            }
            Some(body) => {
                let mut request = agent().post(url);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                request.send(body.as_bytes())
            }
        };
        let mut answer = answer.unwrap_or_else(|error| panic!("{at}: {line}: {error}"));
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().expect("body");
        assert_eq!(status, 200, "{at}: {line}: {text}");
        if let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&text) {
            assert!(!json.contains_key("errors"), "{at}: {line}: {text}");
        }
        self.answer = text;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A failed test shows what the processes it started logged last.
        let failed = std::thread::panicking();
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
            if failed {
                eprintln!("---- the node on {} (last 40 lines)", node.home.display());
                eprintln!("{}", tail(&node.log, 40));
            }
        }
        for dir in &self.clusters {
            if failed {
                let homes = std::fs::read_dir(dir).into_iter().flatten().flatten();
                for home in homes.filter(|entry| entry.path().is_dir()) {
                    eprintln!("---- {} (last 40 lines)", home.path().display());
                    eprintln!("{}", tail(&home.path().join("node.log"), 40));
                }
            }
            let _ = self
                .weft(&["cluster".into(), "down".into(), "--dir".into()])
                .arg(dir)
                .output();
        }
    }
}

/// A filter given as one shell word (possibly quoted).
fn words_one(text: &str) -> String {
    let mut all = words(text);
    assert_eq!(all.len(), 1, "one jq filter: {text}");
    all.remove(0)
}
