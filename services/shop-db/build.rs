// embed_migrations! only sees new or changed SQL files when the crate is rebuilt.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
