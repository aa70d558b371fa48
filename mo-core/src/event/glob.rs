//! Device-name globs: `*` matches any run of characters, `?` exactly one, anything else itself.

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one character; case-sensitive).
///
/// ```
/// use mo_core::event::glob_match;
/// assert!(glob_match("web*", "web12"));
/// assert!(glob_match("db?-*", "db1-east"));
/// assert!(!glob_match("web?", "web12"));
/// ```
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    // Where the last `*` was, and the name position it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("web*", "web", true),
            ("web*", "we", false),
            ("*1", "web1", true),
            ("*1", "web12", false),
            ("w*b*1", "wxbyb1", true),
            ("?", "", false),
            ("a?c", "abc", true),
            ("a?c", "abbc", false),
            ("rack[1]", "rack[1]", true),
            ("", "", true),
            ("", "x", false),
            ("**x", "abx", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob_match(pattern, name), want, "{pattern} vs {name}");
        }
    }
}
