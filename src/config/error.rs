//! Configuration errors: each names its key path (`pools.web.servers[2].address`) and, when the
//! file is at hand, its line, so an operator can fix a whole file in one pass.

use std::fmt;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path from the top of the file, e.g. `pools.web.servers[2].address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        if self.0.is_empty() {
            write!(f, "(top level)")?;
        }
        Ok(())
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: KeyPath,
    /// 1-based line of the key in the file, when it can be found.
    pub line: Option<usize>,
    pub message: String,
    /// A warning is reported but does not make the file invalid.
    pub warning: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every error found while loading one file, in file order.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.iter().filter(|e| !e.warning).count();
        writeln!(
            f,
            "{}: {n} error{}",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems during validation; nothing stops at the first one.
#[derive(Debug, Default)]
pub struct Collector {
    pub errors: Vec<ConfigError>,
}

impl Collector {
    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.push(path, message.into(), false);
    }
    pub fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.push(path, message.into(), true);
    }
    fn push(&mut self, path: &KeyPath, message: String, warning: bool) {
        self.errors.push(ConfigError {
            path: path.clone(),
            line: None,
            message,
            warning,
        });
    }
    pub fn has_errors(&self) -> bool {
        self.errors.iter().any(|e| !e.warning)
    }
}

/// Finds the line of a key path in the TOML source, using `toml_edit`'s spans.
pub struct Locator<'a> {
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

/// A place in the parsed document that a key path can step into.
enum Node<'a> {
    Item(&'a toml_edit::Item),
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

type Span = Option<std::ops::Range<usize>>;

impl<'a> Node<'a> {
    fn step(&self, seg: &Seg) -> Option<(Span, Node<'a>)> {
        use toml_edit::{Item, Value};
        match seg {
            Seg::Key(k) => {
                let table: &dyn toml_edit::TableLike = match self {
                    Node::Item(i) => i.as_table_like()?,
                    Node::Table(t) => *t,
                    Node::Value(v) => v.as_inline_table()?,
                };
                let (key, item) = table.get_key_value(k)?;
                Some((key.span().or_else(|| item.span()), Node::Item(item)))
            }
            Seg::Index(i) => match self {
                Node::Item(Item::ArrayOfTables(a)) => a.get(*i).map(|t| (t.span(), Node::Table(t))),
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                    a.get(*i).map(|v| (v.span(), Node::Value(v)))
                }
                _ => None,
            },
        }
    }
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        Locator {
            text,
            doc: toml_edit::ImDocument::parse(text).ok(),
        }
    }

    /// The 1-based line of the deepest part of `path` found in the file.
    pub fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Item(doc.as_item());
        let mut best: Span = None;
        for seg in &path.0 {
            let Some((span, next)) = node.step(seg) else {
                break;
            };
            if span.is_some() {
                best = span;
            }
            node = next;
        }
        best.map(|s| self.line_at(s.start))
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}
