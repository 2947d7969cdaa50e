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

/// Evaluates a mask expression of the kernel's headers: `|`, `&`, `~`,
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
