//! README.md's options table is the one generated from the modules' source.

#[test]
fn the_readme_options_table_matches_the_modules() {
    let root = xtask::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = xtask::options_doc::options_table(&root).unwrap();
    let expected = xtask::options_doc::readme_with_table(&readme, &table).unwrap();
    assert!(
        readme == expected,
        "README.md's options table is stale: run `cargo run -p xtask -- options-doc`"
    );
    for option in [
        "services.alertlab.shop.enable",
        "services.alertlab.observability.profile",
        "services.alertlab.shop.ports.<name>",
    ] {
        assert!(
            table.contains(&format!("`{option}`")),
            "{option} missing from\n{table}"
        );
    }
}
