use diesel::prelude::*;
use ipnet::IpNet;
use shop_db::{
    models::{Customer, NewLoginAttempt},
    schema::{customers, login_attempts},
};

pub fn customer_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<Customer>> {
    customers::table
        .filter(customers::email.eq(email))
        .select(Customer::as_select())
        .first(conn)
        .optional()
}

pub fn record_attempt(conn: &mut PgConnection, attempt: &NewLoginAttempt<'_>) -> QueryResult<()> {
    diesel::insert_into(login_attempts::table)
        .values(attempt)
        .execute(conn)
        .map(|_| ())
}

pub fn host_net(ip: std::net::IpAddr) -> IpNet {
    IpNet::from(ip)
}
