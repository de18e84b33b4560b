//! Compiled string patterns: wildcards (`*`, `?`) and policy variables (`${key}`).
//!
//! A policy string is compiled once, when the policy is parsed, into a list of
//! [`Token`]s. Evaluation then either matches the tokens directly (no variables:
//! no allocation) or first resolves the variables against the request context.
//! Text that comes from a variable, and the escapes `${*}`, `${?}` and `${$}`,
//! is always literal, so a user name containing `*` can never widen a grant.

use crate::context::Context;

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`; `key` is lower-cased.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// How a string is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (Action, Resource, `StringLike`, `ArnLike`).
    pub wildcards: bool,
    /// `${…}` is a policy variable (Version 2012-10-17 only).
    pub variables: bool,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    has_vars: bool,
}

/// A resolved piece of a pattern, borrowed from the pattern or the context.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece<'a> {
    Lit(&'a str),
    Star,
    One,
}

/// A policy variable whose key is absent from the request context and which has
/// no default. IAM treats the statement holding it as not applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unresolved;

impl Pattern {
    /// Compiles `text` with the given syntax.
    pub(crate) fn compile(text: &str, syntax: Syntax) -> Pattern {
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if syntax.variables && rest.starts_with("${") {
                if let Some((token, len)) = parse_variable(rest) {
                    match token {
                        VarToken::Literal(ch) => lit.push(ch),
                        VarToken::Var { key, default } => {
                            flush(&mut lit, &mut tokens);
                            tokens.push(Token::Var { key, default });
                        }
                    }
                    rest = &rest[len..];
                    continue;
                }
            }
            match c {
                '*' if syntax.wildcards => {
                    flush(&mut lit, &mut tokens);
                    // Consecutive stars mean the same as one.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' if syntax.wildcards => {
                    flush(&mut lit, &mut tokens);
                    tokens.push(Token::One);
                }
                _ => lit.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        flush(&mut lit, &mut tokens);
        let has_vars = tokens.iter().any(|t| matches!(t, Token::Var { .. }));
        Pattern { tokens, has_vars }
    }

    /// Whether the pattern holds policy variables.
    #[cfg(test)]
    pub(crate) fn has_vars(&self) -> bool {
        self.has_vars
    }

    /// The lower-cased context keys the pattern's variables refer to.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match t {
            Token::Var { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }

    /// Calls `f` with the pattern's pieces, resolving variables from `ctx`.
    pub(crate) fn with_pieces<R>(
        &self,
        ctx: &Context,
        f: impl FnOnce(&[Piece<'_>]) -> R,
    ) -> Result<R, Unresolved> {
        // Small patterns (nearly all) resolve on the stack: no allocation.
        let mut buf: [Piece<'_>; 8] = [Piece::One; 8];
        if self.tokens.len() <= buf.len() {
            for (slot, token) in buf.iter_mut().zip(&self.tokens) {
                *slot = resolve(token, ctx)?;
            }
            return Ok(f(&buf[..self.tokens.len()]));
        }
        let pieces = self
            .tokens
            .iter()
            .map(|t| resolve(t, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(f(&pieces))
    }

    /// Matches `text` against the pattern.
    pub(crate) fn matches(
        &self,
        text: &str,
        ctx: &Context,
        case: Case,
    ) -> Result<bool, Unresolved> {
        self.with_pieces(ctx, |pieces| glob_match(pieces, text, case))
    }

    /// The pattern written back in policy syntax.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

fn resolve<'p>(token: &'p Token, ctx: &'p Context) -> Result<Piece<'p>, Unresolved> {
    match token {
        Token::Var { key, default } => match ctx.single(key) {
            Some(value) => Ok(Piece::Lit(value)),
            None => default.as_deref().map(Piece::Lit).ok_or(Unresolved),
        },
        other => Ok(plain_piece(other)),
    }
}

fn plain_piece(token: &Token) -> Piece<'_> {
    match token {
        Token::Lit(s) => Piece::Lit(s),
        Token::Star => Piece::Star,
        Token::One => Piece::One,
        // Variables are resolved by the caller before this is reached.
        Token::Var { .. } => Piece::Lit(""),
    }
}

fn flush(lit: &mut String, tokens: &mut Vec<Token>) {
    if !lit.is_empty() {
        tokens.push(Token::Lit(std::mem::take(lit)));
    }
}

enum VarToken {
    Literal(char),
    Var {
        key: String,
        default: Option<String>,
    },
}

/// Parses `${…}` at the start of `s`; returns the token and its length in bytes.
/// Anything that is not a well-formed variable stays literal text.
fn parse_variable(s: &str) -> Option<(VarToken, usize)> {
    let body_end = s.find('}')?;
    let body = &s[2..body_end];
    let len = body_end + 1;
    let token = match body {
        "*" => VarToken::Literal('*'),
        "?" => VarToken::Literal('?'),
        "$" => VarToken::Literal('$'),
        _ => {
            let (key, default) = match body.split_once(',') {
                Some((key, default)) => {
                    let default = default.trim();
                    let quoted = default
                        .strip_prefix('\'')
                        .and_then(|d| d.strip_suffix('\''))?;
                    (key.trim(), Some(quoted.to_string()))
                }
                None => (body.trim(), None),
            };
            if key.is_empty() || key.contains(['$', '{']) {
                return None;
            }
            VarToken::Var {
                key: key.to_ascii_lowercase(),
                default,
            }
        }
    };
    Some((token, len))
}

/// Whether literal comparison folds ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Sensitive,
    /// ASCII case folding; used for actions and service prefixes, which are ASCII.
    InsensitiveAscii,
}

/// Matches `text` against `pieces` with single-star backtracking: linear in
/// the common case, never exponential, no allocation.
pub(crate) fn glob_match(pieces: &[Piece<'_>], text: &str, case: Case) -> bool {
    let bytes = text.as_bytes();
    let mut pi = 0;
    let mut ti = 0;
    // (piece index after the last star, text index the star currently ends at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(piece) = pieces.get(pi) {
            match *piece {
                Piece::Star => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                Piece::One if ti < bytes.len() => {
                    ti += char_len(bytes, ti);
                    pi += 1;
                    continue;
                }
                Piece::Lit(lit) if starts_with(&bytes[ti..], lit.as_bytes(), case) => {
                    ti += lit.len();
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        } else if ti == bytes.len() {
            return true;
        }
        match star {
            Some((after, at)) if at < bytes.len() => {
                let next = at + char_len(bytes, at);
                star = Some((after, next));
                pi = after;
                ti = next;
            }
            _ => return false,
        }
    }
}

fn starts_with(text: &[u8], prefix: &[u8], case: Case) -> bool {
    let Some(head) = text.get(..prefix.len()) else {
        return false;
    };
    // A plain loop: literals are short and usually differ in the first byte,
    // where a call to memcmp costs more than the comparison.
    let mut pairs = head.iter().zip(prefix);
    match case {
        Case::Sensitive => pairs.all(|(a, b)| a == b),
        Case::InsensitiveAscii => pairs.all(|(a, b)| a.eq_ignore_ascii_case(b)),
    }
}

/// Length in bytes of the UTF-8 character starting at `i` (`i` is always on a
/// character boundary because the text is a `str` and we only advance by
/// whole characters or whole literals).
fn char_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(_) => 2,
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIKE: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };
    const EQUALS: Syntax = Syntax {
        wildcards: false,
        variables: true,
    };
    const OLD: Syntax = Syntax {
        wildcards: true,
        variables: false,
    };

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::compile(pattern, LIKE)
            .matches(text, &Context::new(), Case::Sensitive)
            .unwrap_or(false)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "ab"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("??", "é€"), "? matches one character, not one byte");
        assert!(!m("?", "é€"));
        assert!(m("*/home/*", "bucket/home/alice"));
        assert!(m("a*b*c", "axxbyybzzc"));
        assert!(!m("a*b*c", "axxbyyzz"));
        assert!(m("**", "x"));
        assert!(!m("abc", "ABC"));
        assert!(!m("", "x"));
        assert!(m("", ""));
    }

    #[test]
    fn ascii_case_folding() {
        let p = Pattern::compile("cloudshell:Create*", LIKE);
        let ctx = Context::new();
        assert_eq!(
            p.matches("CLOUDSHELL:createEnvironment", &ctx, Case::InsensitiveAscii),
            Ok(true)
        );
        assert_eq!(
            p.matches("CLOUDSHELL:createEnvironment", &ctx, Case::Sensitive),
            Ok(false)
        );
    }

    #[test]
    fn no_pathological_backtracking() {
        let pattern = "a*a*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(10_000);
        assert!(!m(pattern, &text));
    }

    #[test]
    fn variables_and_escapes() {
        let mut ctx = Context::new();
        ctx.insert("aws:username", "al*ce");
        let p = Pattern::compile("home/${aws:username}/*", LIKE);
        assert_eq!(p.matches("home/al*ce/x", &ctx, Case::Sensitive), Ok(true));
        // Variable text is literal: its `*` does not match "alice".
        assert_eq!(p.matches("home/alice/x", &ctx, Case::Sensitive), Ok(false));

        let p = Pattern::compile("${*}${?}${$}", LIKE);
        assert_eq!(p.tokens(), &[Token::Lit("*?$".into())]);
        assert_eq!(p.matches("*?$", &ctx, Case::Sensitive), Ok(true));
        assert_eq!(p.matches("x?$", &ctx, Case::Sensitive), Ok(false));

        let p = Pattern::compile("${aws:PrincipalTag/team, 'none'}", EQUALS);
        assert_eq!(p.matches("none", &ctx, Case::Sensitive), Ok(true));
        let p = Pattern::compile("${aws:PrincipalTag/team}", EQUALS);
        assert_eq!(p.matches("none", &ctx, Case::Sensitive), Err(Unresolved));
    }

    #[test]
    fn variable_keys_are_case_insensitive() {
        let mut ctx = Context::new();
        ctx.insert("AWS:UserName", "bob");
        let p = Pattern::compile("${aws:username}", EQUALS);
        assert_eq!(p.matches("bob", &ctx, Case::Sensitive), Ok(true));
    }

    #[test]
    fn equals_syntax_keeps_wildcards_literal() {
        let p = Pattern::compile("a*", EQUALS);
        let ctx = Context::new();
        assert_eq!(p.matches("a*", &ctx, Case::Sensitive), Ok(true));
        assert_eq!(p.matches("ab", &ctx, Case::Sensitive), Ok(false));
    }

    #[test]
    fn old_version_has_no_variables() {
        let p = Pattern::compile("${aws:username}*", OLD);
        assert!(!p.has_vars());
        let ctx = Context::new();
        assert_eq!(
            p.matches("${aws:username}-x", &ctx, Case::Sensitive),
            Ok(true)
        );
    }

    #[test]
    fn malformed_variables_stay_literal() {
        for text in ["${", "${}", "${a, nodefault}", "${a,'x'", "$${a}"] {
            let p = Pattern::compile(text, EQUALS);
            let ctx = Context::new();
            // Must not panic; `${a}`-free forms match themselves.
            if !p.has_vars() {
                assert_eq!(p.matches(text, &ctx, Case::Sensitive), Ok(true), "{text}");
            }
        }
    }
}
