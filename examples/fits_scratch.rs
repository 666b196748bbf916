use std::path::Path;
fn main() {
    for a in std::env::args().skip(1) {
        match aiaprep::fits::read(Path::new(&a)) {
            Ok(m) => println!("{a}: OK {:?} nan={}", m.data.dim(), m.data.iter().filter(|v| v.is_nan()).count()),
            Err(e) => println!("{a}: ERR {e}"),
        }
    }
}
