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

/// A failed attempt, against the account `email` belongs to if any, in one statement: a
/// refused login costs the database one round trip.
pub fn record_refused_attempt(conn: &mut PgConnection, email: &str, ip: IpNet) -> QueryResult<()> {
    let account = customers::table
        .filter(customers::email.eq(email))
        .select(customers::id)
        .single_value();
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::email.eq(email),
            login_attempts::ip_address.eq(ip),
            login_attempts::success.eq(false),
            login_attempts::customer_id.eq(account),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn host_net(ip: std::net::IpAddr) -> IpNet {
    IpNet::from(ip)
}
