// Tests CURVE certificates: the ZPL reader and writer, the secret twin and its permissions, and
// allowlist directories, with every malformed input named in a clear error.
#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fabric {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;

void write_text(const fs::path& p, const std::string& text, fs::perms perms = fs::perms(0644)) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  fs::permissions(p, perms);
}

std::string read_text(const fs::path& p) {
  std::string text(static_cast<std::size_t>(fs::file_size(p)), '\0');
  std::ifstream in(p, std::ios::binary);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 0777;
}

std::string what_of(auto&& fn) {
  try {
    fn();
  } catch (const error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

class CertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!zmq_has("curve")) GTEST_SKIP() << "libzmq was built without CURVE";
    keys = curve_keypair::generate();
  }
  curve_certificate cert() const { return {keys.public_key, keys.secret_key, {{"name", "broker-1"}}}; }

  temp_dir dir;
  curve_keypair keys;
};

TEST_F(CertificateTest, SaveWritesPublicAndSecretFilesWithTheirModes) {
  const fs::path p = dir.path() / "server.key";
  save_curve_certificate(cert(), p);
  EXPECT_EQ(mode_of(p), 0644u);
  EXPECT_EQ(mode_of(p.string() + "_secret"), 0600u);
  const std::string pub = read_text(p);
  EXPECT_EQ(pub.find(keys.secret_key), std::string::npos) << "the public file must hold no secret";
  EXPECT_NE(pub.find("    public-key = \"" + keys.public_key + "\""), std::string::npos) << pub;
  EXPECT_NE(read_text(p.string() + "_secret").find("    secret-key = \"" + keys.secret_key + "\""),
            std::string::npos);
}

TEST_F(CertificateTest, SavedFilesLoadBack) {
  const fs::path p = dir.path() / "server.key";
  save_curve_certificate(cert(), p);
  const curve_certificate pub = load_curve_certificate(p);
  EXPECT_EQ(pub.public_key, keys.public_key);
  EXPECT_TRUE(pub.secret_key.empty());
  ASSERT_EQ(pub.metadata.size(), 1u);
  EXPECT_EQ(pub.metadata[0].first, "name");
  EXPECT_EQ(pub.metadata[0].second, "broker-1");
  const curve_keypair pair = load_curve_keypair(p);  // the public name finds its _secret twin
  EXPECT_EQ(pair.public_key, keys.public_key);
  EXPECT_EQ(pair.secret_key, keys.secret_key);
  EXPECT_EQ(load_curve_keypair(p.string() + "_secret").secret_key, keys.secret_key);
  EXPECT_EQ(load_curve_public_key(p.string()), keys.public_key);
  EXPECT_EQ(load_curve_public_key(keys.public_key), keys.public_key);
}

TEST_F(CertificateTest, SaveRefusesToOverwriteUnlessAsked) {
  const fs::path p = dir.path() / "k";
  save_curve_certificate(cert(), p);
  expect_error(errc::invalid_argument, [&] { save_curve_certificate(cert(), p); });
  const curve_keypair other = curve_keypair::generate();
  save_curve_certificate({other.public_key, other.secret_key, {}}, p, true);
  EXPECT_EQ(load_curve_keypair(p).public_key, other.public_key);
  EXPECT_EQ(mode_of(p.string() + "_secret"), 0600u);
}

TEST_F(CertificateTest, SaveRefusesAPublicNameEndingInSecret) {
  expect_error(errc::invalid_argument, [&] { save_curve_certificate(cert(), dir.path() / "x_secret"); });
  EXPECT_FALSE(fs::exists(dir.path() / "x_secret"));
  EXPECT_FALSE(fs::exists(dir.path() / "x_secret_secret"));
}

TEST_F(CertificateTest, KeypairLoadsFromASecretCertificateOfAnyName) {
  const fs::path p = dir.path() / "k";
  save_curve_certificate(cert(), p);
  fs::rename(p.string() + "_secret", dir.path() / "server.key");
  EXPECT_EQ(load_curve_keypair(dir.path() / "server.key").secret_key, keys.secret_key);
}

TEST_F(CertificateTest, FifoIsRefusedWithoutHanging) {
  const fs::path p = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  expect_error(errc::io_error, [&] { (void)load_curve_certificate(p); });
}

TEST_F(CertificateTest, SaveLeavesNoTemporaryFiles) {
  save_curve_certificate(cert(), dir.path() / "k");
  save_curve_certificate(cert(), dir.path() / "k", true);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 2u);
}

TEST_F(CertificateTest, SaveNeedsTheSecretKey) {
  expect_error(errc::invalid_argument,
               [&] { save_curve_certificate({keys.public_key, "", {}}, dir.path() / "k"); });
}

TEST_F(CertificateTest, SecretFileOpenToOthersIsRefusedWithTheFix) {
  const fs::path p = dir.path() / "k";
  save_curve_certificate(cert(), p);
  fs::permissions(p.string() + "_secret", fs::perms(0640));
  expect_error(errc::invalid_argument, [&] { (void)load_curve_keypair(p); });
  EXPECT_NE(what_of([&] { (void)load_curve_keypair(p); }).find("chmod 600"), std::string::npos);
  // The public file is not affected: it holds no secret.
  EXPECT_EQ(load_curve_certificate(p).public_key, keys.public_key);
}

TEST_F(CertificateTest, MissingFilesAreNamed) {
  const fs::path p = dir.path() / "absent";
  expect_error(errc::io_error, [&] { (void)load_curve_certificate(p); });
  EXPECT_NE(what_of([&] { (void)load_curve_keypair(p); }).find("absent_secret"), std::string::npos);
  expect_error(errc::io_error, [&] { (void)load_curve_certificate(dir.path()); });  // a directory
  expect_error(errc::invalid_argument, [&] { (void)load_curve_public_key("nonsense"); });
}

TEST_F(CertificateTest, PublicCertificateGivenAsKeyPairIsRefused) {
  const fs::path p = dir.path() / "k";
  save_curve_certificate(cert(), p);
  fs::copy_file(p, dir.path() / "only_secret");  // a public certificate under a secret's name
  expect_error(errc::invalid_argument, [&] { (void)load_curve_keypair(dir.path() / "only_secret"); });
}

TEST_F(CertificateTest, ParsesZplWithCommentsQuotesAndOtherSections) {
  const std::string text =
      "#   a comment\r\n"
      "\n"
      "metadata\n"
      "    name = 'it''s'  # single quotes\n"
      "    email = \"a@b.org\"\n"
      "    plain = unquoted   # comment after\n"
      "other\n"
      "    nested\n"
      "        public-key = \"not a key and ignored\"\n"
      "curve\n"
      "    public-key = " + keys.public_key + "\n";
  // "'it''s'" is not ZPL (no escapes): the value ends at the second quote, then text follows.
  expect_error(errc::malformed, [&] { (void)parse_curve_certificate(text); });
  std::string fixed = text;
  fixed.replace(fixed.find("'it''s'"), 7, "\"it's\"");
  const curve_certificate c = parse_curve_certificate(fixed);
  EXPECT_EQ(c.public_key, keys.public_key);
  ASSERT_EQ(c.metadata.size(), 3u);
  EXPECT_EQ(c.metadata[0].second, "it's");
  EXPECT_EQ(c.metadata[1].second, "a@b.org");
  EXPECT_EQ(c.metadata[2].second, "unquoted");
}

TEST_F(CertificateTest, UnquotedKeysMayHoldAHash) {
  // '#' is a Z85 character: in an unquoted value it starts a comment only after white space.
  const std::string key = "abcdefghij#klmnopqrst.uvwxyzABCD-EFGHIJK";
  ASSERT_TRUE(is_z85_key(key));
  const curve_certificate c = parse_curve_certificate("curve\n    public-key = " + key + "  # a comment\n");
  EXPECT_EQ(c.public_key, key);
}

TEST_F(CertificateTest, MalformedTextIsRefusedWithItsLine) {
  const std::string good_key = "curve\n    public-key = \"" + keys.public_key + "\"\n";
  const struct {
    std::string text;
    std::string says;
  } cases[] = {
      {"", "no curve/public-key"},
      {"curve\n", "no curve/public-key"},
      {"curve\n    public-key = \"short\"\n", "line 2"},
      {"curve\n\tpublic-key = \"" + keys.public_key + "\"\n", "tabs"},
      {"curve\n   public-key = \"" + keys.public_key + "\"\n", "multiple of 4"},
      {"curve\n        public-key = \"" + keys.public_key + "\"\n", "more than one level"},
      {"curve\n    public-key = \"" + keys.public_key + "\n", "not closed"},
      {"curve\n    public-key ~ 1\n", "expected '='"},
      {"cur ve\n", "expected '='"},
      {"curve = a b\n", "unexpected text"},
      {"=x\n", "expected a name"},
      {good_key + "    public-key = \"" + keys.public_key + "\"\n", "twice"},
      {good_key + "    secret-key = \"" + curve_keypair::generate().secret_key + "\"\n", "does not belong"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    expect_error(errc::malformed, [&] { (void)parse_curve_certificate(c.text, "f"); });
    EXPECT_NE(what_of([&] { (void)parse_curve_certificate(c.text, "f"); }).find(c.says), std::string::npos)
        << what_of([&] { (void)parse_curve_certificate(c.text, "f"); });
  }
}

TEST_F(CertificateTest, BoundsHold) {
  expect_error(errc::too_large, [] { (void)parse_curve_certificate(std::string(max_certificate_bytes + 1, '#')); });
  std::string deep;
  for (int i = 0; i < 9; ++i) deep += std::string(static_cast<std::size_t>(i) * 4, ' ') + "n\n";
  expect_error(errc::malformed, [&] { (void)parse_curve_certificate(deep); });
  std::string many = "metadata\n";
  for (int i = 0; i < 1100; ++i) many += "    k" + std::to_string(i) + " = v\n";
  expect_error(errc::malformed, [&] { (void)parse_curve_certificate(many); });
  const fs::path big = dir.path() / "big";
  write_text(big, std::string(max_certificate_bytes + 10, '#'));
  expect_error(errc::too_large, [&] { (void)load_curve_certificate(big); });
}

TEST_F(CertificateTest, FormatRefusesMetadataThatCannotRoundTrip) {
  curve_certificate c = cert();
  c.metadata = {{"bad name", "v"}};
  expect_error(errc::invalid_argument, [&] { (void)format_curve_certificate(c, false); });
  c.metadata = {{"n", "two\nlines"}};
  expect_error(errc::invalid_argument, [&] { (void)format_curve_certificate(c, false); });
  c.metadata = {{"n", "say \"hi\""}};
  EXPECT_EQ(parse_curve_certificate(format_curve_certificate(c, true)).metadata[0].second, "say \"hi\"");
}

TEST_F(CertificateTest, AllowlistReadsPublicCertificatesAndSkipsSecrets) {
  const fs::path allow = dir.sub("allow");
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    const curve_keypair k = curve_keypair::generate();
    expected.push_back(k.public_key);
    save_curve_certificate({k.public_key, k.secret_key, {}}, allow / ("client" + std::to_string(i)));
  }
  fs::create_directories(allow / "team");
  const curve_keypair nested = curve_keypair::generate();
  expected.push_back(nested.public_key);
  save_curve_certificate({nested.public_key, nested.secret_key, {}}, allow / "team" / "c");
  write_text(allow / ".hidden", "not a certificate");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(load_curve_allowlist(allow), expected);
}

TEST_F(CertificateTest, AllowlistNamesTheBadFile) {
  const fs::path allow = dir.sub("allow");
  save_curve_certificate(cert(), allow / "good");
  write_text(allow / "junk.txt", "hello\n");
  expect_error(errc::malformed, [&] { (void)load_curve_allowlist(allow); });
  EXPECT_NE(what_of([&] { (void)load_curve_allowlist(allow); }).find("junk.txt"), std::string::npos);
  expect_error(errc::io_error, [&] { (void)load_curve_allowlist(dir.path() / "absent"); });
}

}  // namespace
}  // namespace fabric
