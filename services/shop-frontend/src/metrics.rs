use prometheus::{IntCounterVec, Opts, Registry};

/// The pages counted in `page_views_total{page}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    Product,
    Cart,
    Checkout,
}

impl Page {
    pub const ALL: [Page; 4] = [Page::Home, Page::Product, Page::Cart, Page::Checkout];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Product => "product",
            Self::Cart => "cart",
            Self::Checkout => "checkout",
        }
    }
}

/// `page_views_total{page}`.
#[derive(Clone)]
pub struct FrontendMetrics {
    page_views: IntCounterVec,
}

impl FrontendMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let page_views = IntCounterVec::new(
            Opts::new(
                "page_views_total",
                "Pages rendered successfully, by page (home, product, cart, checkout).",
            ),
            &["page"],
        )?;
        registry.register(Box::new(page_views.clone()))?;
        // Every series exists from the start, at 0, so rates and alerts see them at once.
        for page in Page::ALL {
            page_views.with_label_values(&[page.as_str()]);
        }
        Ok(Self { page_views })
    }

    pub fn page_view(&self, page: Page) {
        self.page_views.with_label_values(&[page.as_str()]).inc();
    }
}
