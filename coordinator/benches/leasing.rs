// Placeholder so the workspace manifest parses; the coordinator engineer replaces it.
fn main() {}
