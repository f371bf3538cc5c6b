// fabric-keygen: makes a CURVE key pair and writes it as a certificate pair, NAME (public) and
// NAME_secret (owner-only), in the ZPL layout CZMQ's zcert uses, then prints the public key. It
// also prints the public key of an existing certificate (--show), to hand to a peer.
#include <fabric/error.hpp>
#include <fabric/security.hpp>
#include <fabric/version.hpp>

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
  std::string name;
  std::string show;
  std::vector<std::string> meta;
  bool force = false;
  bool quiet = false;

  CLI::App app{std::string("fabric-keygen ") + fabric::version_string +
               ": makes a CURVE key pair and writes it as a certificate pair that fabric and CZMQ "
               "both read"};
  app.set_version_flag("--version", std::string(fabric::version_string));
  auto* name_opt = app.add_option("name", name,
                                  "where to write the public certificate; the secret one goes to "
                                  "NAME_secret, readable by its owner only");
  app.add_option("-m,--meta", meta, "metadata to record, NAME=VALUE (repeatable): name=broker-1")
      ->check([](const std::string& kv) -> std::string {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return "'" + kv + "' is not NAME=VALUE";
        return {};
      });
  app.add_flag("-f,--force", force, "overwrite NAME and NAME_secret if they exist");
  app.add_flag("-q,--quiet", quiet, "print only the public key");
  auto* show_opt = app.add_option("--show", show,
                                  "print the public key held in this certificate (public or secret) "
                                  "and write nothing");
  show_opt->excludes(name_opt);
  app.footer("Give NAME to the peers that must recognise this key (put it in a server's --curve-allow\n"
             "directory, or pass it as a client's --curve-server-key); keep NAME_secret where only\n"
             "its owner reads it and pass it as --curve-secret. The public key is printed on stdout.\n"
             "Exit codes: 0 done, 1 failure (an existing file, a write error), 64 bad arguments.");
  try {
    app.parse(argc, argv);
    if (name.empty() && show.empty()) throw CLI::RequiredError("NAME or --show");
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 64;
  }

  try {
    if (!show.empty()) {
      std::cout << fabric::load_curve_certificate(show).public_key << '\n';
      return 0;
    }
    const fabric::curve_keypair keys = fabric::curve_keypair::generate();
    fabric::curve_certificate cert{keys.public_key, keys.secret_key, {}};
    for (const auto& kv : meta) {
      const auto eq = kv.find('=');
      cert.metadata.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    fabric::save_curve_certificate(cert, name, force);
    if (quiet) {
      std::cout << keys.public_key << '\n';
    } else {
      std::cout << "public key:         " << keys.public_key << '\n'
                << "public certificate: " << name << '\n'
                << "secret certificate: " << name << "_secret (mode 0600)\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "fabric-keygen: " << e.what() << '\n';
    return 1;
  }
}
