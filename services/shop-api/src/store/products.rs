use diesel::prelude::*;
use shop_db::{models::Product, schema::products};

pub fn list(
    conn: &mut PgConnection,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Product>> {
    let mut query = products::table
        .select(Product::as_select())
        .order(products::id)
        .limit(limit)
        .offset(offset)
        .into_boxed();
    if let Some(term) = search {
        query = query.filter(products::name.ilike(like_pattern(term)));
    }
    query.load(conn)
}

pub fn get(conn: &mut PgConnection, id: i32) -> QueryResult<Option<Product>> {
    products::table
        .find(id)
        .select(Product::as_select())
        .first(conn)
        .optional()
}

/// `%term%` with LIKE's wildcards in the term escaped, so a search is always literal.
fn like_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_terms_are_literal() {
        assert_eq!(super::like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
