# PyPI's torch 2.11.0 is its CUDA 13.0 build, and its CMake package (Caffe2Config.cmake) will not
# configure without a CUDA toolkit: nvcc, the CUDA headers and cudart, even to build CPU code on a
# machine with no GPU. Where no toolkit is installed (no nvcc on the PATH or in /usr/local/cuda,
# no CUDA_HOME, CUDACXX or toolkit variable set), point CMake at NVIDIA's toolkit pieces from PyPI
# that scripts/install-deps.sh puts beside torch (site-packages/nvidia/cu13: nvcc, crt, cccl, nvvm;
# version 13.0 as torch's). Include before find_package(Torch); CMAKE_PREFIX_PATH must hold torch's
# cmake_prefix_path (site-packages/torch/share/cmake).
if(NOT CMAKE_CUDA_COMPILER AND NOT CUDA_TOOLKIT_ROOT_DIR AND NOT CUDAToolkit_ROOT
   AND NOT DEFINED ENV{CUDA_HOME} AND NOT DEFINED ENV{CUDA_PATH} AND NOT DEFINED ENV{CUDACXX})
  find_program(KILN_SYSTEM_NVCC nvcc PATHS /usr/local/cuda/bin NO_CACHE)
  if(NOT KILN_SYSTEM_NVCC)
    foreach(_kiln_p IN LISTS CMAKE_PREFIX_PATH)
      get_filename_component(_kiln_cu "${_kiln_p}/../../../nvidia/cu13" ABSOLUTE)
      if(EXISTS "${_kiln_cu}/bin/nvcc" AND EXISTS "${_kiln_cu}/nvvm/bin/cicc" AND EXISTS "${_kiln_cu}/lib/libcudart.so")
        set(CUDA_TOOLKIT_ROOT_DIR "${_kiln_cu}" CACHE PATH "CUDA toolkit: NVIDIA's wheels beside torch (no toolkit installed)")
        set(CUDAToolkit_ROOT "${_kiln_cu}" CACHE PATH "CUDA toolkit: NVIDIA's wheels beside torch (no toolkit installed)")
        set(CMAKE_CUDA_COMPILER "${_kiln_cu}/bin/nvcc" CACHE FILEPATH "nvcc from NVIDIA's wheel beside torch")
        message(STATUS "kiln: no CUDA toolkit installed; using NVIDIA's toolkit wheels beside torch: ${_kiln_cu}")
        break()
      endif()
    endforeach()
    if(NOT CUDA_TOOLKIT_ROOT_DIR)
      message(STATUS "kiln: no CUDA toolkit found, nor NVIDIA's toolkit wheels beside torch: "
                     "scripts/install-deps.sh installs them (torch's CMake package needs one to configure)")
    endif()
  endif()
endif()
