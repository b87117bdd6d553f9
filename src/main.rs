fn main() {
    let _ = heat::cli::Cli::default();
}
