//! Text on the PNG plots without system fonts: the public-domain 8x8
//! bitmap font of the `font8x8` crate, scaled up by whole pixels, drawn
//! pixel by pixel through plotters. ASCII only (anything else prints as
//! `?`); horizontal or rotated a quarter turn for y-axis titles.

use plotters::prelude::*;

/// Pixels per font dot.
pub const SCALE: i32 = 2;
/// Width and height of one character cell, in pixels.
pub const CELL: i32 = 8 * SCALE;

/// Where the anchor point sits on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Left,
    Center,
    Right,
}

pub fn width(text: &str) -> i32 {
    text.chars().count() as i32 * CELL
}

fn glyph(c: char) -> [u8; 8] {
    let index = if c.is_ascii() && !c.is_ascii_control() {
        c as usize
    } else {
        '?' as usize
    };
    font8x8::legacy::BASIC_LEGACY[index]
}

/// Draws `text` with its top edge at `y` and its `anchor` at `x`.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    x: i32,
    y: i32,
    anchor: Anchor,
    color: &RGBColor,
) {
    let left = match anchor {
        Anchor::Left => x,
        Anchor::Center => x - width(text) / 2,
        Anchor::Right => x - width(text),
    };
    for (i, c) in text.chars().enumerate() {
        let origin = left + i as i32 * CELL;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    dot(area, origin + col * SCALE, y + row as i32 * SCALE, color);
                }
            }
        }
    }
}

/// Draws `text` reading bottom to top, centred vertically on `y`, its left
/// edge (the glyph tops) at `x`.
pub fn draw_vertical<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    x: i32,
    y: i32,
    color: &RGBColor,
) {
    let bottom = y + width(text) / 2;
    for (i, c) in text.chars().enumerate() {
        let origin = bottom - i as i32 * CELL;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    dot(
                        area,
                        x + row as i32 * SCALE,
                        origin - (col + 1) * SCALE,
                        color,
                    );
                }
            }
        }
    }
}

fn dot<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    color: &RGBColor,
) {
    for dx in 0..SCALE {
        for dy in 0..SCALE {
            let _ = area.draw_pixel((x + dx, y + dy), color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_character_has_a_glyph() {
        for c in ' '..='~' {
            assert!(
                c == ' ' || glyph(c).iter().any(|&row| row != 0),
                "{c:?} is blank"
            );
        }
        assert_eq!(glyph('\u{e9}'), glyph('?'));
    }

    #[test]
    fn widths_scale_with_length() {
        assert_eq!(width("MiB/s"), 5 * CELL);
        assert_eq!(width(""), 0);
    }
}
