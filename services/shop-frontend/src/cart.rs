//! A session's cart: product ids and quantities only; names and prices come from the API
//! when a page shows them, so they are never stale.

/// Most units of one product in a cart (what one API order may hold).
pub const MAX_LINE_QUANTITY: i32 = 100;
/// Most different products in a cart, bounding a session's memory.
pub const MAX_CART_LINES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLine {
    pub product_id: i32,
    pub quantity: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cart {
    lines: Vec<CartLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("a cart holds at most {MAX_LINE_QUANTITY} units of a product: {in_cart} of product {product_id} are in the cart already, {adding} more would make {total}")]
    TooManyUnits {
        product_id: i32,
        in_cart: i32,
        adding: i32,
        total: i32,
    },
    #[error("a cart holds at most {MAX_CART_LINES} different products")]
    Full,
}

impl Cart {
    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }

    /// Units in the cart.
    pub fn units(&self) -> i32 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    /// Adds `quantity` units (1..=100, checked by the caller's schema) of a product.
    pub fn add(&mut self, product_id: i32, quantity: i32) -> Result<(), CartError> {
        if let Some(line) = self.lines.iter_mut().find(|l| l.product_id == product_id) {
            let total = line.quantity.saturating_add(quantity);
            if total > MAX_LINE_QUANTITY {
                return Err(CartError::TooManyUnits {
                    product_id,
                    in_cart: line.quantity,
                    adding: quantity,
                    total,
                });
            }
            line.quantity = total;
            return Ok(());
        }
        if self.lines.len() >= MAX_CART_LINES {
            return Err(CartError::Full);
        }
        self.lines.push(CartLine {
            product_id,
            quantity,
        });
        Ok(())
    }

    /// Empties the cart, returning what it held.
    pub fn take(&mut self) -> Vec<CartLine> {
        std::mem::take(&mut self.lines)
    }

    /// Puts back lines a checkout did not complete, ahead of anything added meanwhile and
    /// merged with it (quantities capped, lines bounded).
    pub fn restore(&mut self, lines: Vec<CartLine>) {
        let added = std::mem::replace(&mut self.lines, lines);
        for line in added {
            let existing = self
                .lines
                .iter()
                .position(|l| l.product_id == line.product_id);
            match existing {
                Some(i) => {
                    self.lines[i].quantity =
                        (self.lines[i].quantity + line.quantity).min(MAX_LINE_QUANTITY)
                }
                None if self.lines.len() < MAX_CART_LINES => self.lines.push(line),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_product_again_adds_to_its_line() {
        let mut cart = Cart::default();
        cart.add(1, 2).unwrap();
        cart.add(2, 1).unwrap();
        cart.add(1, 3).unwrap();
        assert_eq!(
            cart.lines(),
            [
                CartLine {
                    product_id: 1,
                    quantity: 5
                },
                CartLine {
                    product_id: 2,
                    quantity: 1
                }
            ]
        );
        assert_eq!(cart.units(), 6);
    }

    #[test]
    fn a_line_holds_at_most_100_units_and_a_cart_50_lines() {
        let mut cart = Cart::default();
        cart.add(1, 100).unwrap();
        let err = cart.add(1, 1).unwrap_err();
        assert!(err.to_string().contains("at most 100 units"), "{err}");
        assert_eq!(cart.lines()[0].quantity, 100);
        for id in 2..=MAX_CART_LINES as i32 {
            cart.add(id, 1).unwrap();
        }
        assert_eq!(cart.add(999, 1), Err(CartError::Full));
        assert_eq!(cart.lines().len(), MAX_CART_LINES);
    }

    #[test]
    fn restored_lines_merge_with_what_was_added_meanwhile() {
        let mut cart = Cart::default();
        cart.add(1, 2).unwrap();
        cart.add(2, 99).unwrap();
        let taken = cart.take();
        assert!(cart.lines().is_empty());
        cart.add(2, 5).unwrap();
        cart.add(3, 1).unwrap();
        cart.restore(taken);
        assert_eq!(
            cart.lines(),
            [
                CartLine {
                    product_id: 1,
                    quantity: 2
                },
                CartLine {
                    product_id: 2,
                    quantity: 100
                },
                CartLine {
                    product_id: 3,
                    quantity: 1
                }
            ]
        );
    }
}
