//! What the virtual users do: the three operations, their weights (`--mix`), and the dice that
//! pick an operation (and a product, and a notification) for each request.

use reqwest::StatusCode;

/// What a virtual user does in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    /// `GET /api/products/{id}` of a working-set product; one time in ten `GET /api/products?limit=20`.
    ProductRead,
    /// `POST /api/orders` for a working-set product.
    OrderCreate,
    /// `GET /api/notifications?recipient=<the run's address>&limit=20`, or one of those by id.
    NotificationRead,
}

impl Operation {
    const ALL: [Self; 3] = [Self::ProductRead, Self::OrderCreate, Self::NotificationRead];

    /// Its name in the table.
    fn name(self) -> &'static str {
        match self {
            Self::ProductRead => "product-read",
            Self::OrderCreate => "order-create",
            Self::NotificationRead => "notification-read",
        }
    }

    /// The status that counts as success.
    pub(super) fn success(self) -> StatusCode {
        match self {
            Self::OrderCreate => StatusCode::CREATED,
            Self::ProductRead | Self::NotificationRead => StatusCode::OK,
        }
    }

    /// Its place in arrays indexed by operation ([`Mix`], the tallies).
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of the operations (`--mix`); their sum is above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mix {
    /// Indexed by [`Operation::index`].
    weights: [u64; 3],
}

impl Mix {
    /// `products=70,orders=20,notifications=10`; an operation left out weighs 0.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        const HINT: &str = "e.g. products=70,orders=20,notifications=10";
        let mut weights: [Option<u64>; 3] = [None; 3];
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("\"{part}\" is not name=weight ({HINT})"))?;
            let name = name.trim();
            let operation = match name {
                "products" | "product-read" => Operation::ProductRead,
                "orders" | "order-create" => Operation::OrderCreate,
                "notifications" | "notification-read" => Operation::NotificationRead,
                _ => {
                    return Err(format!(
                        "unknown operation \"{name}\": the operations are products, orders and notifications ({HINT})"
                    ));
                }
            };
            let weight = weight.trim().parse::<u32>().map_err(|_| {
                format!("the weight of {name} must be a whole number of 0 or more, not \"{}\"", weight.trim())
            })?;
            if weights[operation.index()].replace(u64::from(weight)).is_some() {
                return Err(format!("{} is given twice", operation.name()));
            }
        }
        let weights = weights.map(|weight| weight.unwrap_or(0));
        if weights.iter().sum::<u64>() == 0 {
            return Err(format!("the weights add up to 0: give at least one operation a weight above 0 ({HINT})"));
        }
        Ok(Self { weights })
    }

    pub(super) fn weight(&self, operation: Operation) -> u64 {
        self.weights[operation.index()]
    }

    /// The operation a uniformly random `roll` falls on.
    pub(super) fn pick(&self, roll: u64) -> Operation {
        let mut point = roll % self.weights.iter().sum::<u64>();
        for operation in Operation::ALL {
            let weight = self.weight(operation);
            if point < weight {
                return operation;
            }
            point -= weight;
        }
        Operation::ProductRead
    }
}

/// SplitMix64: a fast, good-enough generator for picking operations and products; no
/// cryptography here and no dependency needed.
#[derive(Debug)]
pub(super) struct Dice(u64);

impl Dice {
    /// Dice whose rolls follow from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly chosen index below `len` (which is above zero).
    pub(super) fn index(&mut self, len: usize) -> usize {
        (self.roll() % len.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_names_weights_and_errors() {
        let mix = Mix::parse("products=70, orders=20,notifications=10").unwrap();
        assert_eq!(mix.weights, [70, 20, 10]);
        assert_eq!(Mix::parse("order-create=1").unwrap().weights, [0, 1, 0]);
        let err = |text: &str| Mix::parse(text).unwrap_err();
        assert!(err("foo=1").contains("unknown operation \"foo\""));
        assert!(err("products=0,orders=0").contains("add up to 0"));
        assert!(err("products").contains("name=weight"));
        assert!(err("orders=-1").contains("weight of orders"));
        assert!(err("orders=1,order-create=2").contains("twice"));
    }

    #[test]
    fn mix_picks_in_proportion() {
        let mix = Mix::parse("products=70,orders=20,notifications=10").unwrap();
        let mut dice = Dice(7);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[mix.pick(dice.roll()).index()] += 1;
        }
        for (count, expected) in counts.iter().zip([70_000, 20_000, 10_000]) {
            assert!(count.abs_diff(expected) < 1500, "{counts:?}");
        }
        let only_orders = Mix::parse("orders=3").unwrap();
        assert!((0..1000).all(|roll| only_orders.pick(roll) == Operation::OrderCreate));
    }
}
