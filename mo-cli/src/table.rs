//! Plain-text tables with aligned columns, for listings.

use std::io::{self, Write};

/// A table: a header row and data rows, printed with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Add a row (as many cells as headers).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Write the table; the last column is not padded, so lines carry no trailing spaces.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths
                        .get(c)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(cell.chars().count());
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(&["NAME", "URL", "NOTE"]);
        t.row(vec!["web01".into(), "sim://web01".into(), "".into()]);
        t.row(vec!["a".into(), "tcp://h:1".into(), "x".into()]);
        let mut out = Vec::new();
        t.write(&mut out).ok();
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            text,
            "NAME   URL          NOTE\nweb01  sim://web01\na      tcp://h:1    x\n"
        );
    }
}
