// Tests that certificates cross between fabric and CZMQ's zcert both ways: a pair CZMQ saved loads
// in fabric, a pair fabric saved loads in CZMQ, and CZMQ's certificate store reads an allowlist
// directory fabric wrote.
#include <fabric/security.hpp>

#include <fabric_support/endpoint.hpp>

#include <czmq.h>
#include <gtest/gtest.h>

#include <string>

namespace {

using fabric::curve_certificate;
using fabric::curve_keypair;
using fabric::support::temp_dir;

TEST(ZcertCompat, PairSavedByCzmqLoadsInFabric) {
  temp_dir dir;
  const std::string path = (dir.path() / "czmq.cert").string();
  zcert_t* cert = zcert_new();
  ASSERT_NE(cert, nullptr);
  zcert_set_meta(cert, "name", "%s", "made by czmq");
  ASSERT_EQ(zcert_save(cert, path.c_str()), 0);
  const curve_keypair pair = fabric::load_curve_keypair(path);
  EXPECT_EQ(pair.public_key, zcert_public_txt(cert));
  EXPECT_EQ(pair.secret_key, zcert_secret_txt(cert));
  const curve_certificate pub = fabric::load_curve_certificate(path);
  EXPECT_EQ(pub.public_key, zcert_public_txt(cert));
  EXPECT_TRUE(pub.secret_key.empty());
  ASSERT_EQ(pub.metadata.size(), 1u);
  EXPECT_EQ(pub.metadata[0].first, "name");
  EXPECT_EQ(pub.metadata[0].second, "made by czmq");
  zcert_destroy(&cert);
}

TEST(ZcertCompat, PairSavedByFabricLoadsInCzmq) {
  temp_dir dir;
  const std::string path = (dir.path() / "fabric.cert").string();
  const curve_keypair keys = curve_keypair::generate();
  fabric::save_curve_certificate({keys.public_key, keys.secret_key, {{"name", "made by fabric"}}}, path);
  zcert_t* cert = zcert_load(path.c_str());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(std::string(zcert_public_txt(cert)), keys.public_key);
  EXPECT_EQ(std::string(zcert_secret_txt(cert)), keys.secret_key);
  EXPECT_EQ(std::string(zcert_meta(cert, "name")), "made by fabric");
  zcert_destroy(&cert);
}

TEST(ZcertCompat, CzmqStoreReadsAFabricAllowlist) {
  temp_dir dir;
  const auto allow = dir.sub("allow");
  const curve_keypair a = curve_keypair::generate();
  const curve_keypair b = curve_keypair::generate();
  fabric::save_curve_certificate({a.public_key, a.secret_key, {}}, allow / "a");
  fabric::save_curve_certificate({b.public_key, b.secret_key, {}}, allow / "b");
  zcertstore_t* store = zcertstore_new(allow.c_str());
  ASSERT_NE(store, nullptr);
  EXPECT_NE(zcertstore_lookup(store, a.public_key.c_str()), nullptr);
  EXPECT_NE(zcertstore_lookup(store, b.public_key.c_str()), nullptr);
  zcertstore_destroy(&store);
  // And fabric reads the same directory to the same keys.
  EXPECT_EQ(fabric::load_curve_allowlist(allow).size(), 2u);
}

}  // namespace
