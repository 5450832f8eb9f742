library(testthat)
library(Rclipper)

test_check("Rclipper")
