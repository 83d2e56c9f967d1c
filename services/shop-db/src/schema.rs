//! Diesel's view of the tables and views in `migrations/` (kept by hand; views are declared as
//! tables because diesel 2.3's print-schema does not emit them).

diesel::table! {
    products (id) {
        id -> Int4,
        name -> Text,
        description -> Text,
        price -> Numeric,
        stock_level -> Int4,
        low_stock_threshold -> Int4,
        last_updated -> Timestamptz,
    }
}

diesel::table! {
    customers (id) {
        id -> Int4,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    orders (id) {
        id -> Int8,
        product_id -> Int4,
        customer_id -> Nullable<Int4>,
        quantity -> Int4,
        total_amount -> Numeric,
        order_status -> Text,
        payment_method -> Text,
        payment_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        order_time -> Timestamptz,
        updated_at -> Timestamptz,
        public_id -> Uuid,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Int8,
        email -> Text,
        ip_address -> Inet,
        success -> Bool,
        attempt_time -> Timestamptz,
        customer_id -> Nullable<Int4>,
    }
}

diesel::table! {
    customer_sessions (id) {
        id -> Int8,
        customer_id -> Int4,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    /// View: products at or below their threshold.
    low_stock_products (id) {
        id -> Int4,
        name -> Text,
        stock_level -> Int4,
        low_stock_threshold -> Int4,
        last_updated -> Timestamptz,
    }
}

diesel::joinable!(orders -> products (product_id));
diesel::joinable!(orders -> customers (customer_id));
diesel::joinable!(customer_sessions -> customers (customer_id));
diesel::allow_tables_to_appear_in_same_query!(
    products,
    customers,
    orders,
    login_attempts,
    customer_sessions
);
