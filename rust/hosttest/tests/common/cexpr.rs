// SPDX-License-Identifier: GPL-2.0

//! A C integer expression evaluator over the kernel's own macros: object-like
//! and function-like `#define`s of the headers given (expanded as the
//! preprocessor does, without `#` and `##`), the operators of C's integer
//! expressions (`?:`, `||`, `&&`, `|`, `^`, `&`, `==`, `!=`, `<`, `<=`, `>`,
//! `>=`, `<<`, `>>`, `+`, `-`, `*`, `/`, `%`, unary `-`, `~`, `!`), integer
//! casts, and `UL()`, `ULL()`, `BIT()`, `BIT_ULL()`, `GENMASK()`,
//! `GENMASK_ULL()` as built-ins. Values are `i128`, so that a macro of a
//! negative argument (`ESR_ELx_FSC_FAULT_L(-1)`) evaluates as in C; `~` is
//! taken on 64 bits. Anything else fails the test: a kernel whose text this
//! reading does not know is noticed, not guessed at.

use std::cell::RefCell;
use std::collections::HashMap;

use super::kernel::{read_kernel, strip_comments};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Num(i128),
    Ident(String),
    Punct(&'static str),
}

const PUNCTS: [&str; 27] = [
    "...", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "+", "-", "*", "/", "%", "&",
    "|", "^", "~", "!", "?", ":", ",", "<", ">", ".",
];

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i] as char).is_ascii_alphanumeric() {
                i += 1;
            }
            let t = s[start..i].trim_end_matches(['U', 'L', 'u', 'l']);
            let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i128::from_str_radix(h, 16)
            } else if let Some(bin) = t.strip_prefix("0b") {
                i128::from_str_radix(bin, 2)
            } else {
                t.parse()
            };
            out.push(Tok::Num(
                v.unwrap_or_else(|_| panic!("not a number: `{t}`")),
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_string()));
        } else {
            let p = PUNCTS
                .iter()
                .find(|p| s[i..].starts_with(**p))
                .unwrap_or_else(|| panic!("cannot read `{}` in `{s}`", &s[i..]));
            out.push(Tok::Punct(p));
            i += p.len();
        }
    }
    out
}

/// An expression and the names of its variables.
type ExpansionKey = (String, Vec<String>);

/// The macros of some kernel headers.
#[derive(Default)]
pub struct Macros {
    obj: HashMap<String, String>,
    func: HashMap<String, (Vec<String>, String)>,
    /// Expansions already made, by expression and variable names.
    cache: RefCell<HashMap<ExpansionKey, Vec<Tok>>>,
}

/// The types a cast may name.
const TYPES: [&str; 10] = [
    "u8", "u16", "u32", "u64", "int", "long", "unsigned", "s64", "s32", "char",
];

const BUILTINS: [&str; 6] = ["UL", "ULL", "BIT", "BIT_ULL", "GENMASK", "GENMASK_ULL"];

impl Macros {
    /// The `#define`s of kernel files `rels`, later files overriding earlier
    /// ones.
    pub fn from_files(rels: &[&str]) -> Macros {
        let mut m = Macros::default();
        for rel in rels {
            m.add_text(&read_kernel(rel));
        }
        m
    }

    /// Adds the `#define`s of C text `text`.
    pub fn add_text(&mut self, text: &str) {
        let joined = strip_comments(&text.replace("\\\n", " "));
        for l in joined.lines() {
            let Some(rest) = l.trim_start().strip_prefix('#') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix("define") else {
                continue;
            };
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, body) = rest.split_at(end);
            if BUILTINS.contains(&name) {
                continue;
            }
            if let Some(params) = body.strip_prefix('(') {
                let Some((params, body)) = params.split_once(')') else {
                    continue;
                };
                let params = params
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                self.func
                    .insert(name.to_string(), (params, body.trim().to_string()));
                self.obj.remove(name);
            } else {
                self.obj.insert(name.to_string(), body.trim().to_string());
                self.func.remove(name);
            }
        }
    }

    /// Whether `name` is a macro here.
    pub fn has(&self, name: &str) -> bool {
        self.obj.contains_key(name) || self.func.contains_key(name)
    }

    /// The parameters and body of function-like macro `name`.
    pub fn func(&self, name: &str) -> Option<&(Vec<String>, String)> {
        self.func.get(name)
    }

    fn expand(&self, toks: Vec<Tok>, vars: &HashMap<String, i128>, depth: u32) -> Vec<Tok> {
        assert!(depth < 64, "macro expansion too deep");
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Ident(n) if vars.contains_key(n) => out.push(toks[i].clone()),
                Tok::Ident(n)
                    if self.func.contains_key(n) && toks.get(i + 1) == Some(&Tok::Punct("(")) =>
                {
                    let (params, body) = &self.func[n];
                    // The arguments, split on top-level commas.
                    let mut args: Vec<Vec<Tok>> = vec![Vec::new()];
                    let mut level = 0;
                    let mut j = i + 2;
                    loop {
                        let t = toks
                            .get(j)
                            .unwrap_or_else(|| panic!("{n}(: no closing parenthesis"));
                        match t {
                            Tok::Punct("(") => level += 1,
                            Tok::Punct(")") if level == 0 => break,
                            Tok::Punct(")") => level -= 1,
                            Tok::Punct(",") if level == 0 => {
                                args.push(Vec::new());
                                j += 1;
                                continue;
                            }
                            _ => {}
                        }
                        args.last_mut().unwrap().push(t.clone());
                        j += 1;
                    }
                    if params.is_empty() && args.len() == 1 && args[0].is_empty() {
                        args.clear();
                    }
                    assert_eq!(args.len(), params.len(), "{n}(): {args:?}");
                    let args: Vec<Vec<Tok>> = args
                        .into_iter()
                        .map(|a| self.expand(a, vars, depth + 1))
                        .collect();
                    let mut body_toks = Vec::new();
                    for t in tokenize(body) {
                        match &t {
                            Tok::Ident(x) => match params.iter().position(|p| p == x) {
                                Some(k) => {
                                    body_toks.push(Tok::Punct("("));
                                    body_toks.extend(args[k].iter().cloned());
                                    body_toks.push(Tok::Punct(")"));
                                }
                                None => body_toks.push(t),
                            },
                            _ => body_toks.push(t),
                        }
                    }
                    out.extend(self.expand(body_toks, vars, depth + 1));
                    i = j;
                }
                Tok::Ident(n) if self.obj.contains_key(n) => {
                    out.extend(self.expand(tokenize(&self.obj[n]), vars, depth + 1));
                }
                t => out.push(t.clone()),
            }
            i += 1;
        }
        out
    }

    /// The value of C expression `expr`, with local variables `vars`.
    pub fn eval(&self, expr: &str, vars: &[(&str, i128)]) -> i128 {
        let vars: HashMap<String, i128> = vars.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut names: Vec<String> = vars.keys().cloned().collect();
        names.sort();
        let key = (expr.to_string(), names);
        let cached = self.cache.borrow().get(&key).cloned();
        let toks = match cached {
            Some(t) => t,
            None => {
                let t = self.expand(tokenize(expr), &vars, 0);
                self.cache.borrow_mut().insert(key, t.clone());
                t
            }
        };
        let mut p = Parser {
            toks: &toks,
            at: 0,
            vars: &vars,
        };
        let v = p.ternary();
        assert_eq!(p.at, toks.len(), "`{expr}`: left over: {:?}", &toks[p.at..]);
        v
    }

    /// [`Macros::eval`] as a 64-bit unsigned value.
    pub fn eval_u64(&self, expr: &str, vars: &[(&str, i128)]) -> u64 {
        self.eval(expr, vars) as u64
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    at: usize,
    vars: &'a HashMap<String, i128>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(x)) if *x == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) {
        assert!(self.eat(p), "expected `{p}` at {:?}", &self.toks[self.at..]);
    }

    fn ternary(&mut self) -> i128 {
        let c = self.binary(0);
        if self.eat("?") {
            let a = self.ternary();
            self.expect(":");
            let b = self.ternary();
            if c != 0 {
                a
            } else {
                b
            }
        } else {
            c
        }
    }

    fn binary(&mut self, min: u8) -> i128 {
        const OPS: [(&str, u8); 18] = [
            ("||", 1),
            ("&&", 2),
            ("|", 3),
            ("^", 4),
            ("&", 5),
            ("==", 6),
            ("!=", 6),
            ("<", 7),
            ("<=", 7),
            (">", 7),
            (">=", 7),
            ("<<", 8),
            (">>", 8),
            ("+", 9),
            ("-", 9),
            ("*", 10),
            ("/", 10),
            ("%", 10),
        ];
        let mut lhs = self.unary();
        while let Some(Tok::Punct(p)) = self.peek() {
            let Some(&(op, prec)) = OPS.iter().find(|(o, _)| o == p) else {
                break;
            };
            if prec < min.max(1) {
                break;
            }
            self.at += 1;
            let rhs = self.binary(prec + 1);
            let b = |x: bool| i128::from(x);
            lhs = match op {
                "||" => b(lhs != 0 || rhs != 0),
                "&&" => b(lhs != 0 && rhs != 0),
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => b(lhs == rhs),
                "!=" => b(lhs != rhs),
                "<" => b(lhs < rhs),
                "<=" => b(lhs <= rhs),
                ">" => b(lhs > rhs),
                ">=" => b(lhs >= rhs),
                "<<" => lhs << rhs,
                ">>" => lhs >> rhs,
                "+" => lhs + rhs,
                "-" => lhs - rhs,
                "*" => lhs * rhs,
                "/" => lhs / rhs,
                _ => lhs % rhs,
            };
        }
        lhs
    }

    fn unary(&mut self) -> i128 {
        if self.eat("-") {
            return -self.unary();
        }
        if self.eat("~") {
            return i128::from(!(self.unary() as u64));
        }
        if self.eat("!") {
            return i128::from(self.unary() == 0);
        }
        if self.eat("+") {
            return self.unary();
        }
        // A cast: `(u64)`, `(unsigned long)`.
        if matches!(self.peek(), Some(Tok::Punct("(")))
            && matches!(self.toks.get(self.at + 1), Some(Tok::Ident(t)) if TYPES.contains(&t.as_str()))
        {
            self.at += 1;
            while matches!(self.peek(), Some(Tok::Ident(t)) if TYPES.contains(&t.as_str())) {
                self.at += 1;
            }
            self.expect(")");
            return self.unary();
        }
        self.primary()
    }

    fn args(&mut self) -> Vec<i128> {
        self.expect("(");
        let mut out = vec![self.ternary()];
        while self.eat(",") {
            out.push(self.ternary());
        }
        self.expect(")");
        out
    }

    fn primary(&mut self) -> i128 {
        let t = self
            .peek()
            .cloned()
            .unwrap_or_else(|| panic!("expression ends early"));
        self.at += 1;
        match t {
            Tok::Num(n) => n,
            Tok::Punct("(") => {
                let v = self.ternary();
                self.expect(")");
                v
            }
            Tok::Ident(n) if self.vars.contains_key(&n) => self.vars[&n],
            Tok::Ident(n) => {
                assert!(
                    BUILTINS.contains(&n.as_str()),
                    "cannot evaluate `{n}`: not a macro of the headers read"
                );
                let a = self.args();
                match n.as_str() {
                    "UL" | "ULL" => a[0],
                    "BIT" | "BIT_ULL" => 1 << a[0],
                    "GENMASK" | "GENMASK_ULL" => {
                        i128::from((u64::MAX >> (63 - a[0])) & (u64::MAX << a[1]))
                    }
                    _ => panic!("cannot evaluate `{n}(...)`"),
                }
            }
            t => panic!("cannot evaluate {t:?}"),
        }
    }
}
