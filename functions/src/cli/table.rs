//! Plain-text tables for summaries printed to people.

/// Renders rows under a header, columns padded to their widest cell;
/// numeric-looking cells are right-aligned.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| {
                if !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads_and_aligns() {
        let text = super::render(
            &["category", "count"],
            &[
                vec!["Short stay".into(), "12".into()],
                vec!["Long".into(), "3".into()],
            ],
        );
        assert_eq!(
            text,
            "category    count\n----------  -----\nShort stay     12\nLong            3\n"
        );
    }
}
