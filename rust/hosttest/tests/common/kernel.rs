// SPDX-License-Identifier: GPL-2.0

//! The kernel tree the tests check vhe-rs against, `$KDIR` (default: the
//! project's `build/linux`), and what they parse out of its C: `#define`s,
//! integer literals, mask expressions, function bodies.

use std::collections::HashMap;
use std::path::PathBuf;

/// The kernel tree.
pub fn kdir() -> PathBuf {
    std::env::var_os("KDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/linux"))
}

/// The text of file `rel` of the kernel tree.
pub fn read_kernel(rel: &str) -> String {
    let path = kdir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set KDIR to a built kernel tree, or make kernel)",
            path.display()
        )
    })
}

/// The object-like `#define NAME VALUE`s of header `rel` of the kernel tree,
/// continuation lines joined, VALUE kept as text.
pub fn defines(rel: &str) -> HashMap<String, String> {
    let joined = read_kernel(rel).replace("\\\n", " ");
    let mut out = HashMap::new();
    for l in joined.lines() {
        let Some(rest) = l.trim_start().strip_prefix("#define") else {
            continue;
        };
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, body) = rest.split_at(end);
        if body.starts_with('(') {
            continue; // function-like
        }
        out.insert(name.to_string(), body.trim().to_string());
    }
    out
}

/// The value of `#define k`, which the kernel must have.
pub fn define<'a>(d: &'a HashMap<String, String>, k: &str) -> &'a str {
    d.get(k)
        .unwrap_or_else(|| panic!("the kernel does not define {k}"))
}

/// A C integer literal: decimal, `0x` or `0b`, with or without `U`/`L` suffixes.
pub fn num(v: &str) -> u64 {
    let v = v.trim().trim_end_matches(['U', 'L', 'u', 'l']);
    let n = if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = v.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else {
        v.parse().ok()
    };
    n.unwrap_or_else(|| panic!("not a number: `{v}`"))
}

/// `e` split on `op` outside parentheses.
fn split_top(e: &str, op: char) -> Vec<&str> {
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, ch) in e.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == op && depth == 0 => {
                parts.push(&e[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&e[start..]);
    parts
}

/// Evaluates a mask expression of the kernel's headers: `|`, `&`, `<<`, `~`,
/// parentheses, `BIT(n)`, `GENMASK(h, l)`, `GENMASK_ULL(h, l)`, `UL(n)`,
/// numbers and the names of `d`. Anything else fails the test.
pub fn c_eval(expr: &str, d: &HashMap<String, String>) -> u64 {
    let e = expr.trim();
    let parts = split_top(e, '|');
    if parts.len() > 1 {
        return parts.iter().fold(0, |a, p| a | c_eval(p, d));
    }
    let parts = split_top(e, '&');
    if parts.len() > 1 {
        return parts.iter().fold(u64::MAX, |a, p| a & c_eval(p, d));
    }
    // `<<` binds tighter than `&` and `|`, less than `~`; left to right.
    let parts = split_top(e, '<');
    if parts.len() > 1 {
        assert!(
            parts.len() % 2 == 1 && parts.iter().skip(1).step_by(2).all(|p| p.is_empty()),
            "cannot evaluate `{e}`: `<` that is not `<<`"
        );
        let mut operands = parts.iter().step_by(2);
        let first = c_eval(operands.next().unwrap(), d);
        return operands.fold(first, |a, p| a << c_eval(p, d));
    }
    if let Some(r) = e.strip_prefix('~') {
        return !c_eval(r, d);
    }
    if e.starts_with('(') && e.ends_with(')') {
        return c_eval(&e[1..e.len() - 1], d);
    }
    let call = |name: &str| -> Option<Vec<&str>> {
        let r = e.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
        Some(r.split(',').collect())
    };
    if let Some(a) = call("GENMASK_ULL").or_else(|| call("GENMASK")) {
        let (h, l) = (num(a[0]), num(a[1]));
        return (u64::MAX >> (63 - h)) & (u64::MAX << l);
    }
    if let Some(a) = call("BIT") {
        return 1 << num(a[0]);
    }
    if let Some(a) = call("UL") {
        return num(a[0]);
    }
    if e.starts_with(|c: char| c.is_ascii_digit()) {
        return num(e);
    }
    match d.get(e) {
        Some(v) => c_eval(v, d),
        None => panic!("cannot evaluate `{e}`"),
    }
}

/// The body of C function `name` (from its opening line to the `}` at column 0).
pub fn c_function<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .lines()
        .position(|l| {
            !l.starts_with(char::is_whitespace)
                && l.contains(&format!(" {name}("))
                && !l.ends_with(';')
        })
        .unwrap_or_else(|| panic!("no definition of {name}()"));
    let off: usize = text.lines().take(start).map(|l| l.len() + 1).sum();
    let body = &text[off..];
    let end = body
        .find("\n}\n")
        .unwrap_or_else(|| panic!("{name}(): no closing brace"));
    &body[..end]
}

/// `X` of `PREFIX(X)SUFFIX...`.
pub fn inside<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    Some(&rest[..rest.find(')')?])
}

/// `text` without its C comments (`/* */` and `//`), each replaced by a space.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                out.push(' ');
                let end = rest[b + 2..]
                    .find("*/")
                    .unwrap_or_else(|| panic!("unterminated comment"));
                rest = &rest[b + 2 + end + 2..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                out.push(' ');
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
            (Some(_), None) => unreachable!(),
        }
    }
}

/// `text` with every run of white space made one space.
pub fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The part of `s` after `open` (which ends with an opening `(`, `[` or `{`)
/// up to the bracket that closes it, and what follows that bracket.
pub fn balanced<'a>(s: &'a str, open: &str) -> Option<(&'a str, &'a str)> {
    let start = s.find(open)? + open.len();
    let (o, c) = match open.chars().last()? {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        '{' => ('{', '}'),
        x => panic!("balanced(): `{open}` does not end with a bracket but `{x}`"),
    };
    let mut depth = 1;
    for (i, ch) in s[start..].char_indices() {
        if ch == o {
            depth += 1;
        } else if ch == c {
            depth -= 1;
            if depth == 0 {
                return Some((&s[start..start + i], &s[start + i + 1..]));
            }
        }
    }
    None
}

/// The elements of the initializer of array `name` in `text` (`name[] = {
/// ... };`), comments removed, white space squashed, in order.
pub fn c_initializer(text: &str, name: &str) -> Vec<String> {
    let text = strip_comments(text);
    let (body, _) = balanced(&text, &format!("{name}[] = {{"))
        .unwrap_or_else(|| panic!("no initializer of {name}[]"));
    split_top(body, ',')
        .into_iter()
        .map(squash)
        .filter(|x| !x.is_empty())
        .collect()
}

/// The conditions of the `if` statements of a function body, in order, each
/// with the statement that follows its closing parenthesis (up to its `;` or
/// `{`), comments removed and white space squashed.
pub fn if_statements(body: &str) -> Vec<(String, String)> {
    let body = strip_comments(body);
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(at) = rest.find("if (") {
        let before_ok = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let (cond, after) = balanced(&rest[at..], "if (").expect("unbalanced if");
        if before_ok {
            let end = after.find([';', '{']).map_or(after.len(), |e| e + 1);
            out.push((squash(cond), squash(&after[..end])));
        }
        rest = &rest[at + 4..];
    }
    out
}

/// The function calls in C expression `e`, in order, outermost first: each as
/// (name, whole call text).
pub fn c_calls(e: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = e.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let name = &e[start..i];
            let rest = e[i..].trim_start();
            if rest.starts_with('(')
                && !["if", "while", "switch", "return", "sizeof"].contains(&name)
            {
                let (args, _) = balanced(rest, "(").expect("unbalanced call");
                out.push((name.to_string(), format!("{name}({args})")));
            }
        } else {
            i += 1;
        }
    }
    out
}
